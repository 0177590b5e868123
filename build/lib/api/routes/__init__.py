"""The API's routers, one module per area; all mounted under ``/api/v1``."""
