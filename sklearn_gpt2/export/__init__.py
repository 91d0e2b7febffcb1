"""Writing fitted estimators in formats other programs run (ONNX)."""
