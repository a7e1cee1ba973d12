"""Waiting for file descriptors from a response generator, on any server.

Under evserver (or any server with ``x-wsgiorg.fdevent``) a wait records the fd with the
server and returns the empty byte string the generator must yield: the request is parked and
the worker serves others. Elsewhere (a threaded server, Django's ``runserver``, gunicorn with
gevent, where ``select`` is cooperative) the wait blocks in ``select`` and returns the same
empty byte string, so the helpers run unchanged, one thread (or greenlet) per client.
"""

from __future__ import annotations

import select
from collections.abc import Sequence
from typing import Any, Protocol

READABLE = "x-wsgiorg.fdevent.readable"
TIMEOUT = "x-wsgiorg.fdevent.timeout"
#: evserver's extension: wait until any of several fds is ready (see the README).
SELECT = "x-evserver.fdevent.select"
#: evserver's extension: the fd that ended the last wait, or None when its timeout fired.
READY = "x-evserver.fdevent.ready"


class HasFileno(Protocol):
    def fileno(self) -> int: ...


FdLike = int | HasFileno


def fd_number(fd: FdLike) -> int:
    return fd if isinstance(fd, int) else fd.fileno()


class Waiter:
    """Waits on behalf of one request. Yield what ``readable`` and ``any`` return, then read
    ``timed_out`` and ``ready``."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self.server_waits = READABLE in environ
        self._timed_out = False
        self._ready: int | None = None
        self._single: int | None = None

    def readable(self, fd: FdLike, timeout: float | None = None) -> bytes:
        """Waits until ``fd`` is readable or ``timeout`` seconds pass."""
        if self.server_waits:
            self._single = fd_number(fd)
            return self.environ[READABLE](fd, timeout)
        return self._block([fd], timeout)

    def any(self, fds: Sequence[FdLike], timeout: float | None = None) -> bytes:
        """Waits until any of ``fds`` is readable or ``timeout`` seconds pass."""
        if len(fds) == 1:
            return self.readable(fds[0], timeout)
        self._single = None
        if SELECT in self.environ:
            return self.environ[SELECT](list(fds), (), timeout)
        if self.server_waits:
            raise RuntimeError(
                "waiting on several fds needs evserver's x-evserver.fdevent.select extension"
            )
        return self._block(fds, timeout)

    @property
    def timed_out(self) -> bool:
        """True if and only if the last wait ended by its timeout."""
        if self.server_waits:
            return bool(self.environ[TIMEOUT])
        return self._timed_out

    @property
    def ready(self) -> int | None:
        """The fd that ended the last wait (None when the timeout fired)."""
        if self.server_waits:
            if READY in self.environ:
                return self.environ[READY]()
            return None if self.timed_out else self._single
        return self._ready

    def _block(self, fds: Sequence[FdLike], timeout: float | None) -> bytes:
        numbers = [fd_number(fd) for fd in fds]
        ready, _, errors = select.select(numbers, [], numbers, timeout)
        woke = ready or errors
        self._timed_out = not woke
        self._ready = woke[0] if woke else None
        return b""
