"""Channels shared by every worker and every machine, through Redis publish/subscribe.

``RedisHub(url)`` is one per process (create it at import time, before the workers fork).
``hub.channel(name)`` is a :class:`~evserver.comet.Channel` whose ``publish`` goes through
Redis: a Lua script gives the message the next id of a counter in Redis (so ids are global and
a client can resume on any worker or machine), appends it to a bounded history list in Redis,
and publishes it. In each worker process, one background thread holds the hub's one
subscriber connection (a pattern subscription to every channel of the hub) and feeds each
message into the local channel, which wakes the requests parked on it. So a worker costs one
subscriber connection (plus one for publishing, used by ``publish`` and to catch up), never one
per client. After a lost connection the thread reconnects and catches up from the history;
if Redis lost its data meanwhile (restarted without persistence), the id counter is raised
above the ids the process has seen, so clients keep getting new messages.

Needs redis-py (``pip install redis``).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from typing import Any

import redis

from evserver.comet.channel import Channel, Data, Message, Subscription

__all__ = ["RedisChannel", "RedisHub"]

log = logging.getLogger("evserver.comet")

# KEYS: id counter, history list, pub/sub channel. ARGV: message JSON (no id), history size,
# the last id the publishing process has seen (the floor of the new id: see _RAISE_COUNTER).
_PUBLISH = """
local id = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[3])
if id <= floor then
  id = floor + 1
  redis.call('SET', KEYS[1], id)
end
local payload = id .. ' ' .. ARGV[1]
redis.call('RPUSH', KEYS[2], payload)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('PUBLISH', KEYS[3], payload)
return id
"""

# KEYS: id counter. ARGV: the highest id a process has seen. After Redis lost its data (a
# restart without persistence), the counter starts again above what clients already have.
_RAISE_COUNTER = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return current
"""


def _encode(data: Data, event: str | None) -> str:
    body: dict[str, Any] = {"e": event}
    if isinstance(data, bytes):
        body["b"] = base64.b64encode(data).decode()
    else:
        body["d"] = data
    return json.dumps(body, separators=(",", ":"))


def _decode(payload: bytes | str) -> Message:
    text = payload.decode() if isinstance(payload, bytes) else payload
    raw_id, _, raw = text.partition(" ")
    body = json.loads(raw)
    data: Data = base64.b64decode(body["b"]) if "b" in body else body["d"]
    return Message(int(raw_id), data, body.get("e"))


class RedisChannel(Channel):
    """A channel of a :class:`RedisHub`: ``publish`` reaches the subscribers of every worker
    and machine; ``subscribe``, ``since`` and the helpers work as on any channel."""

    def __init__(self, hub: RedisHub, name: str, history: int) -> None:
        super().__init__(name, history)
        self.hub = hub
        self.key = f"{hub.prefix}{name}"

    def publish(self, data: Data, event: str | None = None) -> Message:
        """Publishes through Redis (raises ``redis.RedisError`` when Redis is unreachable);
        the message reaches this process's subscribers through the hub's listener too."""
        if not isinstance(data, (str, bytes)):
            raise TypeError(f"data must be str or bytes, not {type(data).__name__}")
        if event is not None and not isinstance(event, str):
            raise TypeError(f"event must be a str or None, not {type(event).__name__}")
        self.hub._ensure_listening()
        message_id = self.hub._publish(self, _encode(data, event))
        return Message(int(message_id), data, event)

    def subscribe(self, last_id: int | None = None) -> Subscription:
        self.hub._ensure_listening()
        return super().subscribe(last_id)

    def since(self, last_id: int) -> list[Message]:
        self.hub._ensure_listening()
        return super().since(last_id)

    @property
    def last_id(self) -> int:
        self.hub._ensure_listening()
        return self._last_id


class RedisHub:
    """The Redis connections of one process, and its channels.

    ``url``: a redis-py URL (``redis://host:6379/0``, ``unix:///run/redis.sock``).
    ``prefix``: the prefix of every key and pub/sub channel the hub uses. ``history``: the
    default history size of its channels (in Redis and in each process). ``ready_timeout``:
    how long the first use in a process waits for the subscription and the catch-up.
    Other keyword arguments go to ``redis.Redis.from_url``.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "evserver:",
        history: int = 1024,
        ready_timeout: float = 5.0,
        **redis_options: Any,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.history = history
        self.ready_timeout = ready_timeout
        self.redis_options = redis_options
        self._channels: dict[str, RedisChannel] = {}
        self._lock = threading.Lock()
        self._pid = -1
        self._client: redis.Redis | None = None
        self._script: Any = None
        self._raise_counter: Any = None
        self._pubsub: Any = None
        self._ready = threading.Event()
        self._closing = False

    def __repr__(self) -> str:
        return f"<RedisHub {self.url} prefix={self.prefix!r} channels={len(self._channels)}>"

    def channel(self, name: str, history: int | None = None) -> RedisChannel:
        """The hub's channel ``name`` (created on first use; the same object after)."""
        with self._lock:
            existing = self._channels.get(name)
            if existing is not None:
                return existing
            channel = RedisChannel(self, name, history or self.history)
            self._channels[name] = channel
            # Under the lock the listener delivers with: a message it receives now waits until
            # the history is in, so it cannot get ahead of older ones and leave a gap.
            if self._pid == os.getpid() and self._ready.is_set():
                self._catch_up(channel)
        return channel

    def close(self) -> None:
        """Stops this process's listener and closes its connections."""
        self._closing = True
        pubsub, self._pubsub = self._pubsub, None
        # The listener thread owns the pub/sub object: drop its connection under it (it then
        # sees ``_closing`` and closes the rest itself).
        connection = getattr(pubsub, "connection", None)
        if connection is not None:
            try:
                connection.disconnect()
            except (redis.RedisError, OSError, AttributeError):
                pass
        if self._client is not None:
            self._client.close()

    # ---- in each worker process ----------------------------------------------------------

    def _ensure_listening(self) -> None:
        """Starts this process's listener on first use (and again in a forked child), then
        waits until it is subscribed and caught up."""
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._start()
        if not self._ready.is_set() and not self._ready.wait(self.ready_timeout):
            log.warning(
                "evserver.comet: Redis at %s not reachable yet; messages will flow once it is",
                self.url,
            )

    def _start(self) -> None:
        self._pid = os.getpid()
        self._ready = threading.Event()
        self._closing = False
        self._client = redis.Redis.from_url(
            self.url, client_name=f"evserver-pub-{self._pid}", **self.redis_options
        )
        self._script = self._client.register_script(_PUBLISH)
        self._raise_counter = self._client.register_script(_RAISE_COUNTER)
        threading.Thread(
            target=self._listen, name=f"evserver-redis-{self.prefix}", daemon=True
        ).start()

    def _publish(self, channel: RedisChannel, body: str) -> int:
        keys = [f"{channel.key}:id", f"{channel.key}:history", channel.key]
        return int(self._script(keys=keys, args=[body, channel.history, channel._last_id]))

    def _listen(self) -> None:
        backoff = 0.1
        pid = self._pid
        while not self._closing and pid == os.getpid():
            client = redis.Redis.from_url(
                self.url, client_name=f"evserver-sub-{pid}", **self.redis_options
            )
            pubsub = client.pubsub()
            self._pubsub = pubsub
            try:
                pubsub.psubscribe(f"{self.prefix}*")
                # Wait for the confirmation: from here on, no publish can pass us by.
                while pubsub.get_message(timeout=1.0) is None:
                    if self._closing:
                        return
                with self._lock:
                    for channel in list(self._channels.values()):
                        self._catch_up(channel)
                self._ready.set()
                backoff = 0.1
                for item in pubsub.listen():
                    if self._closing:
                        return
                    if item.get("type") != "pmessage":
                        continue
                    self._dispatch(item["channel"], item["data"])
            except (redis.RedisError, OSError, ValueError) as e:
                if self._closing:
                    return
                log.warning("evserver.comet: Redis listener: %s; reconnecting", e)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                try:
                    pubsub.close()
                    client.close()
                except (redis.RedisError, OSError, AttributeError):
                    pass

    def _dispatch(self, raw_channel: bytes | str, payload: bytes | str) -> None:
        name = raw_channel.decode() if isinstance(raw_channel, bytes) else raw_channel
        try:
            message = _decode(payload)
        except (ValueError, KeyError, TypeError) as e:
            log.warning("evserver.comet: dropped a malformed message on %s: %s", name, e)
            return
        # A channel being created catches up under this lock (see ``channel``).
        with self._lock:
            channel = self._channels.get(name[len(self.prefix) :])
            if channel is not None:
                channel._deliver(message)

    def _catch_up(self, channel: RedisChannel) -> None:
        """Delivers what the Redis history holds beyond the local channel (after a start or a
        reconnection)."""
        assert self._client is not None
        for payload in self._client.lrange(f"{channel.key}:history", 0, -1):
            try:
                channel._deliver(_decode(payload))
            except (ValueError, KeyError, TypeError):
                continue
        if channel._last_id:
            self._raise_counter(keys=[f"{channel.key}:id"], args=[channel._last_id])
