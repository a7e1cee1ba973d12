"""A channel over a WebSocket: the third transport beside server-sent events and long-poll.
Each message published on the channel goes to the client as a text message (JSON with its
``id``, ``event`` and ``data`` by default); what the client sends is handed to a callback
(to publish it, say). One parked conversation per client, no thread.

Plain WSGI (under evserver: ``environ['evserver.websocket']`` is there on an upgrade)::

    from evserver.comet import Channel, websocket

    room = Channel("room")

    def application(environ, start_response):
        if websocket.requested(environ):
            return websocket.response(environ, start_response, room, on_message=room.publish)
        ...   # the page, or an SSE fallback for clients without WebSockets
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from evserver.comet._wait import Waiter
from evserver.comet.channel import Channel, Message
from evserver.websocket import ConnectionClosed

__all__ = ["conversation", "render_json", "requested", "response"]

KEY = "evserver.websocket"


def requested(environ: dict[str, Any]) -> bool:
    """Whether the request is a valid WebSocket upgrade the server can take."""
    return environ.get(KEY) is not None


def render_json(message: Message) -> str:
    """The default framing: ``{"id": ..., "event": ..., "data": ...}``."""
    return json.dumps({"id": message.id, "event": message.event, "data": message.data})


def conversation(
    environ: dict[str, Any],
    ws: Any,
    channel: Channel,
    last_id: int | None = None,
    *,
    on_message: Callable[[str | bytes], Any] | None = None,
    render: Callable[[Message], str | bytes] = render_json,
    heartbeat: float | None = None,
) -> Iterator[bytes]:
    """The iterable of an accepted WebSocket ``ws`` following ``channel`` from ``last_id``
    (default: from now): forwards each message as ``render`` frames it, passes what the client
    sends to ``on_message``, and parks in between on both at once. It ends when the client
    closes. ``heartbeat`` (seconds): wake up that often even when nothing happens (the
    server's own pings keep the connection alive; this is for applications that want to
    check something)."""
    subscription = channel.subscribe(last_id)
    waiter = Waiter(environ)
    try:
        while True:
            for message in subscription.fetch():
                ws.send(render(message))
            while (incoming := ws.receive()) is not None:
                if on_message is not None:
                    on_message(incoming)
            yield waiter.any([subscription, ws], heartbeat)
    except ConnectionClosed:
        return


def response(
    environ: dict[str, Any],
    start_response: Callable[..., Any],
    channel: Channel,
    last_id: int | None = None,
    *,
    subprotocol: str | None = None,
    **options: Any,
) -> Iterator[bytes]:
    """A complete WSGI response: accepts the upgrade and returns :func:`conversation`
    (``options`` are its keyword arguments). A request that is not a WebSocket upgrade gets
    ``400 Bad Request``."""
    request = environ.get(KEY)
    if request is None:
        start_response("400 Bad Request", [("Content-Type", "text/plain; charset=utf-8")])
        return iter([b"a WebSocket endpoint\n"])
    ws = request.accept(subprotocol=subprotocol)
    return conversation(environ, ws, channel, last_id, **options)
