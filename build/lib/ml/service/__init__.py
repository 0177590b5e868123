"""The ML scoring microservice (FastAPI)."""
