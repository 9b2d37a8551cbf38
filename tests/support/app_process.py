"""Run the example Flask app in this process and send it requests; used as a separate OS process by tests.

Usage: ``python app_process.py CONFIG_JSON REQUESTS_JSON``; CONFIG_JSON holds ``AUTHGEAR_*`` keys,
REQUESTS_JSON a list of ``{"path": ..., "headers": {...}}``. Prints one JSON object: each answer's status and
body, and the verifier's health, so the parent test can see what this process asked the resolver.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))

from flask_api import create_app  # noqa: E402


def main() -> None:
    config = json.loads(sys.argv[1])
    requests = json.loads(sys.argv[2])
    app = create_app(config)
    client = app.test_client(use_cookies=False)  # send the Cookie header exactly as given
    answers = []
    for item in requests:
        response = client.get(item["path"], headers=item.get("headers", {}))
        answers.append({"status": response.status_code, "body": response.get_json(silent=True)})
    health = client.get("/health").get_json()
    print(json.dumps({"answers": answers, "health": health}))


if __name__ == "__main__":
    main()
