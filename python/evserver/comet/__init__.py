"""evserver's COMET toolkit: broadcast channels, server-sent events, long-poll and
``multipart/x-mixed-replace`` server push, and a Redis-backed channel for several workers and
machines.

- :class:`Channel`: an in-process broadcast channel; ``publish`` from any thread, every
  request parked on it wakes (through ``x-wsgiorg.fdevent``), bounded history, resume by id.
- :mod:`evserver.comet.sse`, :mod:`~evserver.comet.longpoll`,
  :mod:`~evserver.comet.multipart`: the three ways to push, as WSGI responses or as bodies for
  Django's ``StreamingHttpResponse`` and Flask's ``Response``.
- :mod:`evserver.comet.websocket`: a channel over a WebSocket, both ways (under evserver).
- :class:`Waiter`: waits on one fd or several (evserver's ``x-evserver.fdevent.select``) from a
  response generator, and falls back to blocking ``select`` on servers without fdevent.
- :mod:`evserver.comet.redis`: ``RedisHub``, channels shared by every worker and machine.
"""

from evserver.comet import longpoll, multipart, sse, websocket
from evserver.comet._wait import READY, SELECT, Waiter
from evserver.comet.channel import HEARTBEAT, Channel, Message, Subscription

__all__ = [
    "HEARTBEAT",
    "READY",
    "SELECT",
    "Channel",
    "Message",
    "Subscription",
    "Waiter",
    "longpoll",
    "multipart",
    "sse",
    "websocket",
]
