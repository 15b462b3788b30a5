"""Connectors: one module per vendor API, registered by key (see base.py)."""
