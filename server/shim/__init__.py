"""The JSON shim: MLflow's REST API over the same servicers that gRPC calls."""
