"""Equipment image anomaly models: data, training, evaluation, inference, lake scoring."""
