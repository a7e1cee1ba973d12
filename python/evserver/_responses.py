"""Small complete responses shared by the built-in apps (the demo, the chat room)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

StartResponse = Callable[..., Any]


def plain(
    start_response: StartResponse,
    status: str,
    text: str,
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    """A text/plain response with a Content-Length."""
    body = text.encode()
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *(headers or []),
        ],
    )
    return [body]


def html(environ: dict[str, Any], start_response: StartResponse, text: str) -> list[bytes]:
    """A 200 text/html page that is never cached (no body for HEAD)."""
    body = text.encode()
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-cache"),
        ],
    )
    return [body] if environ["REQUEST_METHOD"] != "HEAD" else []
