"""Serving: an HTTP API with dynamic batching, and a web page that shows translations and attention."""
