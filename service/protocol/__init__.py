"""Wire dialects: TF Serving REST and the Open Inference Protocol (V2), JSON and binary <-> numpy."""
