"""The roof: the ``gridlake`` command line, the demo run, foreground services, benchmarks.

Everything here may import every other package of GridLake; nothing imports this package
(the import contracts in ``pyproject.toml`` keep it so).
"""
