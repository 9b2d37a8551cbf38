"""Packaging for flask-authgear: everything is declared in pyproject.toml; this shim serves older tools."""

from setuptools import setup

setup()
