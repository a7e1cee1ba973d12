"""Streams that show whether blocks reach the client as they are made (PEP 3333: a server must
not delay a block), and that none is lost when the stream fails.

- ``/acked?dir=D&n=N``: yields line i, then blocks (as a view waiting on a database does)
  until the client acknowledges it by creating the file ``D/ack-i``, up to 5 s; a line the
  client could not see in time is followed by ``NOT SEEN i``.
- ``/then-raise?n=N&key=K``: yields N lines, then raises; close() is recorded under K.
"""

import os
import time

from recorder import query, record, with_common_routes

TEXT = [("Content-Type", "text/plain")]


def acked(environ, start_response):
    q = query(environ)
    folder, n = q["dir"], int(q["n"])
    start_response("200 OK", TEXT)
    for i in range(n):
        yield f"line {i}\n".encode()
        deadline = time.monotonic() + 5
        ack = os.path.join(folder, f"ack-{i}")
        while not os.path.exists(ack):
            if time.monotonic() > deadline:
                yield f"NOT SEEN {i}\n".encode()
                break
            time.sleep(0.01)


class ThenRaise:
    def __init__(self, key, n):
        self.key, self.left, self.i = key, n, 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.i == self.left:
            raise RuntimeError(f"then-raise {self.key}")
        self.i += 1
        return f"chunk {self.i - 1}\n".encode()

    def close(self):
        record(self.key, "close")


def then_raise(environ, start_response):
    q = query(environ)
    start_response("200 OK", TEXT)
    return ThenRaise(q["key"], int(q["n"]))


ROUTES = {"/acked": acked, "/then-raise": then_raise}


def _app(environ, start_response):
    return ROUTES[environ["PATH_INFO"]](environ, start_response)


application = with_common_routes(_app)
