"""Long-poll: one message per response, then the client asks again with the id it got.

The response body is always one JSON object, with status 200, so that it is the same in plain
WSGI, Django and Flask (whose status is fixed before the body runs):

- a message: ``{"id": 7, "event": null, "data": "hello"}`` (plus ``"missed": n`` when ``n``
  messages left the channel's history before the client could get them);
- no message within ``timeout`` seconds: ``{"timeout": true, "last_id": 6}``.

The client loops: ``GET /poll?last_id=<id of the last message it got>``. Plain WSGI::

    def application(environ, start_response):
        return longpoll.response(environ, start_response, news)

Django: ``StreamingHttpResponse(longpoll.stream(request.environ, news),
headers=dict(longpoll.HEADERS))``; Flask: ``Response(longpoll.stream(request.environ, news),
headers=longpoll.HEADERS)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

from evserver.comet._wait import Waiter
from evserver.comet.channel import Channel

__all__ = ["HEADERS", "last_id", "response", "stream"]

HEADERS: list[tuple[str, str]] = [
    ("Content-Type", "application/json"),
    ("Cache-Control", "no-store"),
    ("X-Accel-Buffering", "no"),
]


def last_id(environ: dict[str, Any], param: str = "last_id") -> int | None:
    """The ``param`` query parameter as a non-negative int, else None (a first request:
    wait for the next message)."""
    values = parse_qs(environ.get("QUERY_STRING", "")).get(param)
    raw = values[0].strip() if values else ""
    return int(raw) if raw.isdigit() else None


def stream(
    environ: dict[str, Any],
    channel: Channel,
    last: int | None = None,
    *,
    timeout: float = 25.0,
) -> Iterator[bytes]:
    """The body: waits (parked) until a message newer than ``last`` (default: the query's
    ``last_id``) is in the channel, or ``timeout`` seconds, then yields one JSON object."""
    if last is None:
        last = last_id(environ)
    subscription = channel.subscribe(last)
    waiter = Waiter(environ)
    messages = subscription.fetch(limit=1)
    if not messages:
        yield subscription.wait(waiter, timeout)
        messages = subscription.fetch(limit=1)
    if messages:
        body = messages[0].as_dict()
        if subscription.missed:
            body["missed"] = subscription.missed
    else:
        body = {"timeout": True, "last_id": subscription.last_id}
    yield json.dumps(body).encode()


def response(
    environ: dict[str, Any],
    start_response: Callable[..., Any],
    channel: Channel,
    last: int | None = None,
    *,
    timeout: float = 25.0,
) -> Iterator[bytes]:
    """A complete WSGI response: :data:`HEADERS` and :func:`stream`."""
    start_response("200 OK", list(HEADERS))
    if environ.get("REQUEST_METHOD") == "HEAD":
        return iter(())
    return stream(environ, channel, last, timeout=timeout)
