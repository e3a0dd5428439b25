"""The gRPC front door: TF Serving's PredictionService and the V2 GRPCInferenceService."""
