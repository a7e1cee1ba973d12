"""Server-sent events (``text/event-stream``): framing, ``Last-Event-ID``, and a ready-made
streaming response that follows a channel with heartbeats.

Plain WSGI::

    from evserver.comet import Channel, sse

    news = Channel("news")

    def application(environ, start_response):
        return sse.response(environ, start_response, news, heartbeat=15)

Django: ``StreamingHttpResponse(sse.stream(request.environ, news),
headers=dict(sse.HEADERS))``; Flask: ``Response(sse.stream(request.environ, news),
headers=sse.HEADERS)``. Both pass the empty chunks (the waits) through to the server.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

from evserver.comet.channel import HEARTBEAT, Channel, Message

__all__ = ["HEADERS", "comment", "event", "last_event_id", "response", "stream"]

#: Response headers for an event stream (no caching, no buffering by a proxy in front).
HEADERS: list[tuple[str, str]] = [
    ("Content-Type", "text/event-stream; charset=utf-8"),
    ("Cache-Control", "no-cache"),
    ("X-Accel-Buffering", "no"),
]

_LINES = re.compile(r"\r\n|\r|\n")


def _field(name: str, value: str) -> str:
    if _LINES.search(value):
        raise ValueError(f"an SSE {name} cannot contain a line break: {value!r}")
    return f"{name}: {value}\n"


def event(
    data: str | bytes,
    id: int | str | None = None,
    event: str | None = None,
    retry: float | None = None,
) -> bytes:
    """One event, framed. Multi-line ``data`` becomes several ``data:`` lines; ``retry`` is the
    reconnection delay in seconds."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    out = []
    if retry is not None:
        out.append(f"retry: {max(0, round(retry * 1000))}\n")
    if id is not None:
        out.append(_field("id", str(id)))
    if event is not None:
        out.append(_field("event", event))
    out.extend(f"data: {line}\n" for line in _LINES.split(text))
    out.append("\n")
    return "".join(out).encode()


def comment(text: str = "") -> bytes:
    """A comment line (ignored by the browser): a heartbeat that keeps proxies from closing
    an idle stream."""
    return "".join(f": {line}\n" if line else ":\n" for line in _LINES.split(text)).encode() + b"\n"


def last_event_id(environ: dict[str, Any], param: str = "lastEventId") -> int | None:
    """The id the client saw last: the ``Last-Event-ID`` header a reconnecting
    ``EventSource`` sends, else the ``param`` query parameter (for a first connection that
    resumes, or a polyfill); None if neither holds a non-negative integer."""
    raw = environ.get("HTTP_LAST_EVENT_ID")
    if raw is None:
        values = parse_qs(environ.get("QUERY_STRING", "")).get(param)
        raw = values[0] if values else None
    if raw is None:
        return None
    raw = raw.strip()
    return int(raw) if raw.isdigit() else None


def stream(
    environ: dict[str, Any],
    channel: Channel,
    last_id: int | None = None,
    *,
    heartbeat: float | None = 15.0,
    retry: float | None = None,
    timeout: float | None = None,
    render: Callable[[Message], bytes] | None = None,
) -> Iterator[bytes]:
    """The body of an event stream following ``channel``: each message as an event (its id,
    its ``event`` name, its data), a comment every ``heartbeat`` seconds without a message,
    and the waits in between. It resumes after ``last_id`` (default: the request's
    ``Last-Event-ID``), ends after ``timeout`` seconds if given (the browser reconnects and
    resumes), and starts with ``retry`` if given. ``render`` replaces the default framing."""
    if last_id is None:
        last_id = last_event_id(environ)
    render = render or _render
    subscription = channel.subscribe(last_id)
    first = b"" if retry is None else f"retry: {max(0, round(retry * 1000))}\n".encode()
    # A comment at once: the browser sees the stream open without waiting for a message.
    yield first + comment()
    for item in subscription.follow(environ, heartbeat=heartbeat, timeout=timeout):
        if isinstance(item, Message):
            yield render(item)
        elif item is HEARTBEAT:
            yield comment()
        else:
            yield item  # type: ignore[misc]


def _render(message: Message) -> bytes:
    return event(message.data, id=message.id, event=message.event)


def response(
    environ: dict[str, Any],
    start_response: Callable[..., Any],
    channel: Channel,
    last_id: int | None = None,
    **options: Any,
) -> Iterator[bytes]:
    """A complete WSGI response: starts it with :data:`HEADERS` and returns :func:`stream`
    (``options`` are its keyword arguments)."""
    start_response("200 OK", list(HEADERS))
    if environ.get("REQUEST_METHOD") == "HEAD":
        return iter(())
    return stream(environ, channel, last_id, **options)
