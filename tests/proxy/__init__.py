"""Proxy mode: which proxies are believed, the shipped configurations, and real Caddy and NGINX in front."""
