"""GridLake jobs: PyFlink streaming and PySpark batch over the lakehouse."""
