"""GridLake's contracts: message and table schemas that every other package derives from.

Nothing in this package imports from jobs/, api/, ml/, mock_devices/ or infra/.
"""
