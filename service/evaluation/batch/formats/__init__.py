"""Readers of the batch job's data formats, each a :class:`service.evaluation.batch.rows.Rows`."""
