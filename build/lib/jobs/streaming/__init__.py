"""Streaming jobs (PyFlink): each has source, transform, sink and main."""
