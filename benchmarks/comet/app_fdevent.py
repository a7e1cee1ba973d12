"""The COMET benchmark's app for fdevent servers (evserver, uWSGI in async mode).

- ``GET /wait?last_id=N``: long-poll on one broadcast channel (``evserver.comet.Channel``):
  answers at once if a message newer than N is there, else parks the request with
  ``x-wsgiorg.fdevent.readable`` on the channel until the next publish; the answer is
  ``{"id": ...}`` with a Content-Length.
- ``GET /publish``: publishes one message; answers its id.
- ``GET /stats``: how many requests are parked right now, and the channel's last id.
"""

import os
from urllib.parse import parse_qs

from common import WAITING, make_app, respond
from evserver.comet import Channel

CHANNEL = Channel("bench", history=16)


def wait(environ, start_response):
    raw = parse_qs(environ.get("QUERY_STRING", "")).get("last_id", [""])[0]
    subscription = CHANNEL.subscribe(int(raw) if raw.isdigit() else None)
    messages = subscription.fetch(limit=1)
    if not messages:
        # uWSGI registers each wait with epoll and refuses a second wait on one fd (EEXIST),
        # so there every request waits on its own duplicate of the channel's fd. evserver
        # takes any number of waits on one fd.
        own = "uwsgi.version" in environ
        fd = os.dup(subscription.fileno()) if own else subscription.fileno()
        try:
            with WAITING:
                yield environ["x-wsgiorg.fdevent.readable"](fd, 300)
        finally:
            if own:
                os.close(fd)
        messages = subscription.fetch(limit=1)
    yield from respond(start_response, {"id": messages[0].id if messages else None})


application = make_app(wait, lambda: CHANNEL.publish("tick").id, lambda: CHANNEL.last_id)
