"""The image import (`gridlake images import`): equipment photos into the lake."""
