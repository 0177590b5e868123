"""GridLake's HTTP API (FastAPI): ADS indicators from the serving copy."""
