"""The Open Inference Protocol (KServe V2) with Triton's binary data and classification extensions."""
