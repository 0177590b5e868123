"""GridLake infrastructure: settings, the local stack, jars and the ``gridlake`` CLI."""
