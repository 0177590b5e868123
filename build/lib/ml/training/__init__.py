"""Self-supervised training and transfer to other sites."""
