"""Server push with ``multipart/x-mixed-replace``: each message replaces the previous one in
the browser (an ``<img>`` fed by a camera, a status line). The seed's "multipart boundaries
for server push", done with a channel.

Plain WSGI::

    def application(environ, start_response):
        return multipart.response(environ, start_response, frames, content_type="image/jpeg")
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from evserver.comet.channel import Channel, Message

__all__ = ["BOUNDARY", "headers", "part", "response", "stream"]

BOUNDARY = "evserver-push"
_TOKEN = re.compile(r"[0-9A-Za-z'()+_,\-./:=?]{1,70}")


def headers(boundary: str = BOUNDARY) -> list[tuple[str, str]]:
    """Response headers for a push stream with ``boundary``."""
    if not _TOKEN.fullmatch(boundary):
        raise ValueError(f"not a valid multipart boundary: {boundary!r}")
    return [
        ("Content-Type", f"multipart/x-mixed-replace; boundary={boundary}"),
        ("Cache-Control", "no-cache"),
        ("X-Accel-Buffering", "no"),
    ]


def part(body: bytes, content_type: str, boundary: str = BOUNDARY) -> bytes:
    """One part: the boundary line, its headers, the body."""
    return (
        f"--{boundary}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
        + b"\r\n"
    )


def stream(
    environ: dict[str, Any],
    channel: Channel,
    *,
    content_type: str = "text/plain; charset=utf-8",
    boundary: str = BOUNDARY,
    last_id: int | None = None,
    timeout: float | None = None,
    render: Callable[[Message], bytes] | None = None,
) -> Iterator[bytes]:
    """The body: one part per message (its data, or ``render(message)``). It starts with the
    channel's latest message, so the client shows the current state at once, unless
    ``last_id`` says where to start. Ends after ``timeout`` seconds if given."""
    if last_id is None:
        last_id = max(0, channel.last_id - 1)
    render = render or (lambda m: m.body)
    for item in channel.subscribe(last_id).follow(environ, timeout=timeout):
        if isinstance(item, Message):
            yield part(render(item), content_type, boundary)
        elif isinstance(item, bytes):
            yield item


def response(
    environ: dict[str, Any],
    start_response: Callable[..., Any],
    channel: Channel,
    **options: Any,
) -> Iterator[bytes]:
    """A complete WSGI response: :func:`headers` and :func:`stream`."""
    start_response("200 OK", headers(options.get("boundary", BOUNDARY)))
    if environ.get("REQUEST_METHOD") == "HEAD":
        return iter(())
    return stream(environ, channel, **options)
