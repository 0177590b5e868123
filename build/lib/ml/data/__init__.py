"""Series sources, synthetic degradation and scaling."""
