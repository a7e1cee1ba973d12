"""The connection's socket for a library that speaks its own protocol on it.

In thread mode (``--threads N``) a WebSocket upgrade request carries
``environ['gunicorn.socket']``, where simple-websocket (and so Flask-Sock) looks for the raw
connection under gunicorn. The server has stopped reading the connection before the
application runs; the socket's first use takes the connection out of the server's hands: it
turns blocking (as gunicorn's is), the bytes the server had already received after the request
come first from ``recv``, and whatever the application then returns or raises is not answered
(the library answered the client itself). Unused, the socket is closed when the call returns.
"""

from __future__ import annotations

import socket


class HandedSocket(socket.socket):
    """A duplicate of the connection's socket that records whether the application used it."""

    def __init__(self, *args, received: bytes = b"", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._received = received
        self.taken = False

    def _take(self) -> None:
        if not self.taken:
            self.taken = True
            super().setblocking(True)

    def _buffered(self, size: int) -> bytes:
        data, self._received = self._received[:size], self._received[size:]
        return data

    def send(self, data, flags: int = 0) -> int:  # type: ignore[override]
        self._take()
        return super().send(data, flags)

    def sendall(self, data, flags: int = 0) -> None:  # type: ignore[override]
        self._take()
        super().sendall(data, flags)

    def recv(self, size: int, flags: int = 0) -> bytes:
        self._take()
        if self._received:
            return self._buffered(size)
        return super().recv(size, flags)

    def recv_into(self, buffer, nbytes: int = 0, flags: int = 0) -> int:  # type: ignore[override]
        self._take()
        if self._received:
            view = memoryview(buffer).cast("B")
            data = self._buffered(nbytes or len(view))
            view[: len(data)] = data
            return len(data)
        return super().recv_into(buffer, nbytes, flags)

    def setblocking(self, flag: bool) -> None:
        self._take()
        super().setblocking(flag)

    def settimeout(self, value: float | None) -> None:
        self._take()
        super().settimeout(value)

    def makefile(self, *args, **kwargs):  # type: ignore[override]
        self._take()
        return super().makefile(*args, **kwargs)

    def detach(self) -> int:
        self._take()
        return super().detach()


def handed_socket(fd: int, received: bytes) -> HandedSocket:
    """``environ['gunicorn.socket']`` over ``fd``, a duplicate of the connection's socket."""
    return HandedSocket(fileno=fd, received=received)
