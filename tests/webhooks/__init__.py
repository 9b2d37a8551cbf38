"""Authgear webhooks: the framework-agnostic core, the Flask and WSGI endpoints, the example."""
