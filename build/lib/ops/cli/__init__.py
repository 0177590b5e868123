"""The ``gridlake`` console command: :mod:`ops.cli.main` and one module per command group."""
