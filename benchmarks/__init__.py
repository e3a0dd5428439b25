"""Load benchmarks of the serving stack: ``python -m benchmarks.run`` (``make bench``)."""
