"""Platform services: settings, logs, the lake, Kafka, the serving store, Spark, the local stack.

Imports nothing of GridLake but :mod:`lakehouse` (the contracts); the pipeline, the
consumers and the command line build on it.
"""
