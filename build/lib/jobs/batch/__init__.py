"""Batch jobs (PySpark) over the lakehouse tables."""
