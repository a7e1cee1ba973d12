"""What the WebSocket benchmark's three apps share: reading a publish, and JSON answers."""

import json


def published(environ) -> str:
    """The message a ``POST /publish`` carries."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return environ["wsgi.input"].read(length).decode()


def answer(start_response, body) -> list[bytes]:
    body = json.dumps(body).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def not_found(start_response) -> list[bytes]:
    start_response("404 Not Found", [("Content-Length", "0")])
    return [b""]
