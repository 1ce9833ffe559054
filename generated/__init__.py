"""Code made by grpcio-tools from protos/ (`make generate`); never edited by hand."""
