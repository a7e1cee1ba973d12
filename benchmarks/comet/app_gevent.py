"""The COMET benchmark's app for gunicorn ``-k gevent``: the same routes as app_fdevent.py,
written the gevent way (a request blocks on a ``gevent.event.Event`` in its greenlet; a
publish sets the current event, waking every waiter, and puts a fresh one in its place)."""

from urllib.parse import parse_qs

from common import WAITING, make_app, respond
from gevent.event import Event


class Broadcast:
    def __init__(self):
        self.last_id = 0
        self.event = Event()

    def publish(self):
        self.last_id += 1
        event, self.event = self.event, Event()
        event.set()
        return self.last_id


CHANNEL = Broadcast()


def wait(environ, start_response):
    raw = parse_qs(environ.get("QUERY_STRING", "")).get("last_id", [""])[0]
    last = int(raw) if raw.isdigit() else CHANNEL.last_id
    if CHANNEL.last_id <= last:
        with WAITING:
            CHANNEL.event.wait(300)
    return respond(start_response, {"id": CHANNEL.last_id if CHANNEL.last_id > last else None})


application = make_app(wait, CHANNEL.publish, lambda: CHANNEL.last_id)
