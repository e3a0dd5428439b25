"""The batch evaluation job: ``python -m service.evaluation.batch`` (console script ``evaluate-model``)."""
