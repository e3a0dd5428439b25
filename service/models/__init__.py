"""Models: the repository on disk, the serving config, the registry in memory, loading and the TensorFlow runtime."""
