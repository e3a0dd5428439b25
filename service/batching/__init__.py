"""Adaptive micro-batching per model version: pure merge/split/planning, and the executors that use them."""
