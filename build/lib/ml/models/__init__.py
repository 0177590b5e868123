"""Neural network models (pure ``torch.nn`` modules, no I/O)."""
