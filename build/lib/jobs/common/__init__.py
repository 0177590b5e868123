"""Shared pieces of the jobs: DDL rendering, launch environment."""
