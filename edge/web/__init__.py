"""The local web console (issue 16): a stdlib HTTP server on the engine's request path."""
