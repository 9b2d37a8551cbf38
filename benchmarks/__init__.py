"""Benchmarks of flask-authgear against a bare Flask request, a raw signature check and peer libraries.

Run with ``make bench`` (``python -m benchmarks``); ``--quick`` for a short run. Everything runs on this
machine against the local Authgear-compatible server on 127.0.0.1; nothing leaves loopback.
"""
