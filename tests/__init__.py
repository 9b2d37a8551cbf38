"""The flask-authgear test suite: one file per behaviour area, helpers shared through ``tests.support``."""
