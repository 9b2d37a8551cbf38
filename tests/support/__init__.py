"""Helpers shared by the test files, imported as ``tests.support.<module>``.

``tests`` is a package, so pytest puts the project root on ``sys.path`` whether it runs from a checkout or from
the unpacked sdist. One helper per job:

- ``auth``: ``bearer(token)`` headers, ``bearer_request(token)`` request data, ``authenticate_secrets()``.
- ``app_server``: ``AppServer``, the one way to serve a WSGI app on a loopback socket, ``get`` and ``send_raw``.
- ``clock``: ``Clock`` moved by hand, ``wall_clock()``, and ``clocked()`` resolver-mode verifiers on it.
- ``jwt``: signing exact headers and claims, base64url, JWT verifiers on a clock, ``serve_json``.
- ``attacks``: the attack catalogue, each attack with the rule that must refuse it.
- ``webhooks``: Authgear's body signature.
- ``examples``: the project's paths and ``load_example``.
- ``apps``, ``echo``, ``flask_login_style``: small apps the tests protect or look through.
- ``recorder``: a scripted resolver that records what it receives.
- ``threads``: ``together()``, the same work in threads released at one moment.
- ``redis_server``, ``caddy_server``, ``nginx_server`` (both on ``proxy_server``), ``net``: real services on free
  loopback ports.
- ``app_process``: the example app in a separate process (run as a script).
"""
