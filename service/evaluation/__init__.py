"""Evaluation: metric math, options, the online :evaluate evaluator, its history and wire codec, the batch job."""
