"""Sphinx configuration. The site builds offline: no inventory is fetched and nothing is downloaded."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

import flask_authgear

project = "flask-authgear"
author = "flask-authgear contributors"
copyright = "flask-authgear contributors"
release = flask_authgear.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "authgear_settings",
]

root_doc = "index"
exclude_patterns = ["_build"]
default_role = "code"
pygments_style = "sphinx"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_class_signature = "separated"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = f"flask-authgear {release}"
html_static_path: list[str] = []
