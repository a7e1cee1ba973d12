"""WebSocket for WSGI applications served by evserver.

On a valid upgrade request (``GET`` with ``Upgrade: websocket``, ``Connection: Upgrade``,
``Sec-WebSocket-Key`` and ``Sec-WebSocket-Version: 13``) the environ holds
``environ['evserver.websocket']``. Its ``accept()`` answers ``101 Switching Protocols`` and
returns the WebSocket; the application's iterable then runs the conversation, waiting for
messages the fdevent way::

    def application(environ, start_response):
        ws = environ["evserver.websocket"].accept()
        while True:
            yield environ["x-wsgiorg.fdevent.readable"](ws, 60)
            message = ws.receive()  # str, bytes, or None (the wait timed out)
            if message is not None:
                ws.send(message)

When the iterable ends the server closes with 1000; if it raises, with 1011 (and logs the
traceback). Once the peer has closed, ``receive()`` and ``send()`` raise
:class:`ConnectionClosed`, which ends a conversation without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class ConnectionClosed(Exception):
    """The WebSocket is closed: by the peer (its close code and reason), by a protocol error
    (1002, 1007, 1009: the server closed it), or because the connection was lost (1006)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        return f"WebSocket closed ({self.code}{': ' + self.reason if self.reason else ''})"


def broadcast(websockets: Iterable[Any], message: str | bytes | bytearray | memoryview) -> int:
    """Sends ``message`` (text for ``str``, binary for bytes-like data) to every WebSocket of
    ``websockets`` that is open, and returns to how many.

    It does what a loop of ``ws.send(message)`` does, without the loop's cost in Python (for a
    few thousand WebSockets, milliseconds) and without raising: WebSockets already closed are
    skipped, and so are clients too far behind to take more (``--websocket-max-queue``; their
    WebSocket fails with 1006 as a ``send`` would make it). Any thread of the worker may call it.
    """
    from evserver._evserver import broadcast as engine_broadcast

    return engine_broadcast(websockets, message)
