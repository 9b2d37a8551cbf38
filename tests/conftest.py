"""Shared fixtures. The ``authgear_server`` fixture comes from the package's own pytest plugin."""
