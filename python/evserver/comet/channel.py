"""The in-process broadcast channel: any code in the process publishes, and every request
waiting on the channel wakes through fdevent and gets the message.

How a waiter never misses a message and never spins: the channel keeps a *bell*, an eventfd
(a pipe where there is none) that has not been rung. A subscriber checks for new messages and
takes the current bell in one step under the channel's lock; a publish appends the message,
swaps in a fresh bell and rings the old one in one step under the same lock. So a subscriber
that found nothing waits on a bell that the next publish rings, and a rung bell is never waited
on again (it stays readable: every request parked on it wakes, on both backends). A bell is
closed when the last subscriber holding it lets it go, never while a request is parked on it.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from evserver.comet._wait import Waiter

__all__ = ["HEARTBEAT", "Channel", "Message", "Subscription"]

Data = str | bytes


@dataclass(frozen=True)
class Message:
    """One published message. ``id`` increases by one with each publish on a channel."""

    id: int
    data: Data
    event: str | None = None
    time: float = field(default_factory=time.time, compare=False)

    @property
    def text(self) -> str:
        """``data`` as text (bytes are decoded as UTF-8, with replacement)."""
        return self.data if isinstance(self.data, str) else self.data.decode("utf-8", "replace")

    @property
    def body(self) -> bytes:
        """``data`` as bytes (text is encoded as UTF-8)."""
        return self.data if isinstance(self.data, bytes) else self.data.encode()

    def as_dict(self) -> dict[str, Any]:
        """``{"id", "event", "data"}`` with ``data`` as text, for JSON."""
        return {"id": self.id, "event": self.event, "data": self.text}


class _Bell:
    """A descriptor that becomes readable, for good, when rung."""

    __slots__ = ("__weakref__", "_write_fd", "fd")

    def __init__(self) -> None:
        if hasattr(os, "eventfd"):
            self.fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            self._write_fd = self.fd
        else:  # macOS: a pipe
            self.fd, self._write_fd = os.pipe()
            for fd in (self.fd, self._write_fd):
                os.set_blocking(fd, False)

    def fileno(self) -> int:
        return self.fd

    def ring(self) -> None:
        try:
            if self._write_fd == self.fd:
                os.eventfd_write(self.fd, 1)
            else:
                os.write(self._write_fd, b"!")
        except BlockingIOError:  # already readable
            pass

    def __del__(self) -> None:
        try:
            os.close(self.fd)
            if self._write_fd != self.fd:
                os.close(self._write_fd)
        except (OSError, AttributeError):
            pass


class Channel:
    """A broadcast channel with a bounded history.

    ``publish`` may be called from any thread of the process (the worker's own code, a
    background thread, a Redis listener). Requests follow the channel with a
    :class:`Subscription` (``channel.subscribe(last_id)``), or through the ready-made
    responses in :mod:`evserver.comet.sse`, :mod:`~evserver.comet.longpoll` and
    :mod:`~evserver.comet.multipart`.

    An in-memory channel lives in one process: with several workers, use
    :class:`evserver.comet.redis.RedisHub` so that a publish reaches every worker.
    """

    def __init__(self, name: str = "", history: int = 1024) -> None:
        if history < 1:
            raise ValueError("history must be at least 1")
        self.name = name
        self.history = history
        self._lock = threading.Lock()
        self._messages: deque[Message] = deque(maxlen=history)
        self._last_id = 0
        self._bell: _Bell | None = None
        _CHANNELS.add(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} last_id={self._last_id}>"

    @property
    def last_id(self) -> int:
        """The id of the last message published (0 before the first)."""
        return self._last_id

    def publish(self, data: Data, event: str | None = None) -> Message:
        """Adds a message and wakes every request waiting on the channel. Thread-safe."""
        if not isinstance(data, (str, bytes)):
            raise TypeError(f"data must be str or bytes, not {type(data).__name__}")
        if event is not None and not isinstance(event, str):
            raise TypeError(f"event must be a str or None, not {type(event).__name__}")
        with self._lock:
            message = Message(self._last_id + 1, data, event)
            self._append_locked(message)
            bell = self._take_bell_locked()
        if bell is not None:
            bell.ring()
        return message

    def since(self, last_id: int) -> list[Message]:
        """The messages after ``last_id`` still in the history, oldest first."""
        with self._lock:
            return self._since_locked(last_id)

    def subscribe(self, last_id: int | None = None) -> Subscription:
        """A cursor on the channel. ``last_id`` is the id of the last message the client saw
        (e.g. from ``Last-Event-ID``); None starts with the next message published."""
        return Subscription(self, last_id)

    # ---- for subclasses and subscriptions ------------------------------------------------

    def _deliver(self, message: Message) -> bool:
        """Adds a message that already has its id (from another process); older ids are
        dropped as duplicates. Thread-safe."""
        with self._lock:
            if message.id <= self._last_id:
                return False
            self._append_locked(message)
            bell = self._take_bell_locked()
        if bell is not None:
            bell.ring()
        return True

    def _append_locked(self, message: Message) -> None:
        self._messages.append(message)
        self._last_id = message.id

    def _take_bell_locked(self) -> _Bell | None:
        bell, self._bell = self._bell, None
        return bell

    def _since_locked(self, last_id: int) -> list[Message]:
        newer: list[Message] = []
        for message in reversed(self._messages):
            if message.id <= last_id:
                break
            newer.append(message)
        newer.reverse()
        return newer

    def _poll_locked(self, last_id: int) -> tuple[list[Message], _Bell]:
        if self._bell is None:
            self._bell = _Bell()
        return self._since_locked(last_id), self._bell

    def _after_fork(self) -> None:
        # The parent's lock may have been held by another thread, and its bell is shared with
        # the parent: a worker process starts with its own.
        self._lock = threading.Lock()
        self._bell = None


#: What :meth:`Subscription.follow` yields when ``heartbeat`` seconds passed without a message.
HEARTBEAT = object()


class Subscription:
    """One client's cursor on a channel: which messages it has seen, and the bell to wait on.

    The low-level loop (the helpers do this for you)::

        sub = channel.subscribe(last_id)
        waiter = Waiter(environ)            # evserver.comet.Waiter
        while True:
            for message in sub.fetch():
                yield render(message)
            yield sub.wait(waiter, timeout=15)   # parks the request; b"" to the server
    """

    def __init__(self, channel: Channel, last_id: int | None = None) -> None:
        self.channel = channel
        current = channel.last_id
        if last_id is None or last_id < 0:
            last_id = current
        #: True when the client's ``last_id`` was ahead of the channel (the server restarted):
        #: it restarts from the channel's present.
        self.reset = last_id > current
        #: The id of the last message handed out by ``fetch``.
        self.last_id = min(last_id, current)
        #: How many messages left the history before this subscriber could see them.
        self.missed = 0
        self._bell: _Bell | None = None

    def fetch(self, limit: int | None = None) -> list[Message]:
        """The messages published since the last fetch (at most ``limit``), oldest first.
        Also takes the bell that the next publish rings."""
        with self.channel._lock:
            messages, self._bell = self.channel._poll_locked(self.last_id)
        if messages:
            self.missed += max(0, messages[0].id - self.last_id - 1)
            if limit is not None and len(messages) > limit:
                messages = messages[:limit]
                self._bell = _READY  # more are waiting: do not park
            self.last_id = messages[-1].id
        return messages

    def fileno(self) -> int:
        """The fd that becomes readable when a message newer than the last fetch arrives."""
        if self._bell is None:
            with self.channel._lock:
                newer, bell = self.channel._poll_locked(self.last_id)
            self._bell = _READY if newer else bell
        return self._bell.fd

    def wait(self, waiter: Waiter, timeout: float | None = None) -> bytes:
        """Waits for the next message or ``timeout`` seconds; yield what it returns."""
        return waiter.readable(self, timeout)

    def follow(
        self,
        environ: dict[str, Any],
        heartbeat: float | None = None,
        timeout: float | None = None,
    ) -> Iterator[bytes | Message | object]:
        """Yields each message as it comes, forever (or for ``timeout`` seconds). In between it
        yields ``b""`` (the wait: pass it to the server as is) and, when ``heartbeat`` seconds
        pass without a message, :data:`HEARTBEAT`."""
        waiter = Waiter(environ)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            yield from self.fetch()
            wait = heartbeat
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                wait = left if wait is None else min(wait, left)
            yield self.wait(waiter, wait)
            if waiter.timed_out and (deadline is None or time.monotonic() < deadline):
                yield HEARTBEAT


class _AlwaysReady(_Bell):
    """A bell rung for good, shared by every subscription that has messages left to fetch."""

    def __init__(self) -> None:
        super().__init__()
        self.ring()


_READY = _AlwaysReady()

_CHANNELS: weakref.WeakSet[Channel] = weakref.WeakSet()


def _reset_after_fork() -> None:
    for channel in list(_CHANNELS):
        channel._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
