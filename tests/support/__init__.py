"""Helpers shared by several test files (importable because pytest puts ``tests/`` on ``sys.path``)."""
