"""A Flask app that streams with fdevent: a clock, as text and as server-sent events.

Run it from the repository root with ``evserver examples.flask_app:app`` (the one-line switch
from ``flask run``), then ``curl -N http://127.0.0.1:8080/clock`` or open
``http://127.0.0.1:8080/``.

``stream_with_context`` keeps the request context alive while the generator runs, so
``request`` can be read between waits; the generator yields the empty byte string each wait
returns, and evserver parks the request until the wait ends.
"""

from __future__ import annotations

import datetime
import socket
from collections.abc import Iterator

from flask import Flask, Response, request, stream_with_context

app = Flask(__name__)

PAGE = """<!doctype html>
<title>Flask clock on evserver</title>
<h1>The server's clock</h1>
<pre id="clock"></pre>
<script>
new EventSource("/events").onmessage = (e) => {
  document.getElementById("clock").textContent = e.data;
};
</script>
"""


def _ticks(interval: float) -> Iterator[bytes | str]:
    """Yields the time, then a wait of ``interval`` seconds, for ever."""
    wait = request.environ["x-wsgiorg.fdevent.readable"]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # never receives anything
    try:
        while True:
            yield datetime.datetime.now().isoformat(sep=" ")
            yield wait(sock, interval)
    finally:
        sock.close()


def _interval() -> float:
    """``?interval=SECONDS`` (0.05 to 60; 1 by default)."""
    return min(max(request.args.get("interval", 1.0, type=float), 0.05), 60.0)


@app.route("/")
def index() -> str:
    return PAGE


@app.route("/clock")
def clock() -> Response:
    return _stream("{}\n", "text/plain")


@app.route("/events")
def events() -> Response:
    return _stream("data: {}\n\n", "text/event-stream", {"Cache-Control": "no-cache"})


def _stream(line: str, mimetype: str, headers: dict[str, str] | None = None) -> Response:
    """A response streaming the clock, each time formatted into ``line``."""

    @stream_with_context  # the request stays readable while the generator runs
    def body() -> Iterator[bytes | str]:
        for item in _ticks(_interval()):
            yield line.format(item) if item else item  # a wait's b"" goes to the server as is

    return Response(body(), mimetype=mimetype, headers=headers)
