"""The clock of the 2009 EvServer introduction, in plain WSGI with x-wsgiorg.fdevent.

    evserver examples.clock        # or: cd examples && evserver clock
    curl -N http://127.0.0.1:8080/

One line a second, pushed over one response. Between lines the generator yields the wait that
``x-wsgiorg.fdevent.readable`` returns, on a UDP socket that never receives anything, so the
one-second timeout is the tick: the server parks the request meanwhile, and one worker holds
thousands of clocks without a thread each. ``?count=N`` stops after N lines.
"""

import datetime
import socket
from urllib.parse import parse_qs


def application(environ, start_response):
    query = parse_qs(environ.get("QUERY_STRING", ""))
    count = int(query["count"][0]) if query.get("count", [""])[0].isdigit() else None
    start_response(
        "200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-cache")]
    )
    return clock(environ, count)


def clock(environ, count=None):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # never bound: never readable
    try:
        n = 0
        while count is None or n < count:
            if n:
                yield environ["x-wsgiorg.fdevent.readable"](sock, 1.0)
            yield f"{datetime.datetime.now():%Y-%m-%d %H:%M:%S}\n".encode()
            n += 1
    finally:
        sock.close()  # also on GeneratorExit, when the client goes away
