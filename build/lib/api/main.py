"""ASGI entry point: ``uvicorn api.main:app`` (settings from the environment)."""

from api.app import create_app
from infra.logs import configure_logging

configure_logging()
app = create_app()
