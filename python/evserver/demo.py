"""The built-in demo, served when ``evserver`` is given no application.

``/`` is a page showing a clock that the server pushes once a second; ``/clock`` is that clock
as server-sent events and ``/clock.txt`` the same as plain text lines (try ``curl -N``). Each
clock is one long response whose generator waits between ticks with
``environ['x-wsgiorg.fdevent.readable'](sock, timeout)`` on a socket that never receives
anything, so the timeout is the tick: the request is parked in the server at no cost in
between, and one worker holds thousands of clocks. This is the clock of the 2009 EvServer
introduction, done right: ticks land on the second, the socket is always closed (the
generator's ``finally`` runs when the client goes away), and a browser shows it with no
plug-in, no polling and no external script.

Beside the clock, the page holds the chat room of :mod:`evserver.chat` (routes under
``/chat``): messages go through an in-memory :class:`evserver.comet.Channel` and reach every
open page by server-sent events (long-poll where there are none, or with
``?transport=poll``). With ``EVSERVER_CHAT_REDIS=redis://...`` the room is a Redis channel,
shared by every worker and machine.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

from evserver import chat
from evserver._responses import StartResponse, html, plain

__all__ = ["CHAT", "application"]


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The demo's WSGI application."""
    path = environ.get("PATH_INFO") or "/"
    if CHAT.handles(path):
        return CHAT(environ, start_response)
    method = environ["REQUEST_METHOD"]
    if path not in ROUTES:
        return plain(start_response, "404 Not Found", f"not found: {path}\n")
    if method not in ("GET", "HEAD"):
        return plain(
            start_response, "405 Method Not Allowed", "use GET\n", [("Allow", "GET, HEAD")]
        )
    return ROUTES[path](environ, start_response)


def page(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    return html(environ, start_response, PAGE)


def clock_events(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The clock as ``text/event-stream``: one event a second, its data a small JSON object."""

    def event(n: int, now: datetime.datetime) -> bytes:
        data = {
            "time": now.strftime("%H:%M:%S"),
            "date": now.strftime("%A %d %B %Y"),
            "zone": now.strftime("%Z") or now.strftime("%z"),
            "iso": now.isoformat(timespec="seconds"),
        }
        prefix = "retry: 2000\n" if n == 0 else ""
        return f"{prefix}id: {n}\ndata: {json.dumps(data)}\n\n".encode()

    return _stream(environ, start_response, "text/event-stream; charset=utf-8", event)


def clock_text(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The clock as plain text, one line a second: the seed's example."""

    def line(_n: int, now: datetime.datetime) -> bytes:
        return f"{now:%Y-%m-%d %H:%M:%S %Z}".rstrip().encode() + b"\n"

    return _stream(environ, start_response, "text/plain; charset=utf-8", line)


def _stream(
    environ: dict[str, Any],
    start_response: StartResponse,
    content_type: str,
    render: Callable[[int, datetime.datetime], bytes],
) -> Iterable[bytes]:
    if "x-wsgiorg.fdevent.readable" not in environ:
        return plain(
            start_response,
            "501 Not Implemented",
            "this clock needs a server with the x-wsgiorg.fdevent extension, such as evserver\n",
        )
    start_response(
        "200 OK",
        [
            ("Content-Type", content_type),
            ("Cache-Control", "no-cache"),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Accel-Buffering", "no"),  # tell a proxy in front not to hold the stream back
        ],
    )
    if environ["REQUEST_METHOD"] == "HEAD":
        return []
    query = parse_qs(environ.get("QUERY_STRING", ""))
    count = int(query["count"][0]) if query.get("count", [""])[0].isdigit() else None
    return _render(_ticks(environ, count), render)


def _render(
    ticks: Iterator[bytes | datetime.datetime],
    render: Callable[[int, datetime.datetime], bytes],
) -> Iterator[bytes]:
    """Passes the waits on to the server and renders the ticks."""
    with contextlib.closing(ticks):  # closing this generator closes the clock's
        n = 0
        for item in ticks:
            if isinstance(item, datetime.datetime):
                yield render(n, item)
                n += 1
            else:
                yield item


def _ticks(environ: dict[str, Any], count: int | None) -> Iterator[bytes | datetime.datetime]:
    """Yields the time now, then again each time the second turns, ``count`` times (forever
    when None). In between it yields what ``x-wsgiorg.fdevent.readable`` returns: the empty
    byte string that asks the server to park the request until the wait ends.
    """
    readable = environ["x-wsgiorg.fdevent.readable"]
    # Never bound, so nothing can ever arrive on it: every wait ends by its timeout.
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        n = 0
        while count is None or n < count:
            if n:
                # Wake a few milliseconds after the second turns, so the display never
                # shows the same second twice.
                yield readable(sock, 1.005 - time.time() % 1.0)
                if not environ["x-wsgiorg.fdevent.timeout"]:
                    continue  # woken early (cannot happen here); wait again
            yield datetime.datetime.now().astimezone()
            n += 1
    finally:
        # Runs on the last tick, and on GeneratorExit when the client went away.
        sock.close()


ROUTES: dict[str, Callable[[dict[str, Any], StartResponse], Iterable[bytes]]] = {
    "/": page,
    "/clock": clock_events,
    "/clock.txt": clock_text,
}

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>evserver</title>
<style>
  :root { color-scheme: light dark; --fg: #1d2327; --muted: #667085; --bg: #f5f6f8;
          --card: #fff; --accent: #d9480f; --ok: #2b8a3e; --bad: #c92a2a; }
  @media (prefers-color-scheme: dark) {
    :root { --fg: #e9ecef; --muted: #98a2b3; --bg: #15181c; --card: #1f242b; }
  }
  * { box-sizing: border-box; }
  body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif;
         color: var(--fg); background: var(--bg); }
  header, main, footer { max-width: 60rem; margin: 0 auto; padding: 1.5rem; }
  header h1 { margin: 0; font-size: 1.6rem; }
  header h1 span { color: var(--accent); }
  header p { margin: .25rem 0 0; color: var(--muted); }
  main { display: grid; gap: 1.5rem; }
  .row { display: grid; gap: 1.5rem; grid-template-columns: repeat(auto-fit, minmax(18rem, 1fr)); }
  .card { background: var(--card); border-radius: .75rem; padding: 1.5rem;
          box-shadow: 0 1px 3px rgba(0, 0, 0, .12); }
  .card h2 { margin: 0 0 1rem; font-size: 1.1rem; }
  #time { font: 600 clamp(2.5rem, 7vw, 4.5rem)/1.1 ui-monospace, "SF Mono", Menlo, monospace;
          letter-spacing: .02em; font-variant-numeric: tabular-nums; }
  #date { color: var(--muted); min-height: 1.5em; }
  .status { display: flex; align-items: center; gap: .5rem; margin-top: 1rem;
            font-size: .9rem; color: var(--muted); }
  .dot { width: .6rem; height: .6rem; border-radius: 50%; background: var(--muted); }
  .dot.live { background: var(--ok); } .dot.down { background: var(--bad); }
  pre { margin: 0; padding: 1rem; overflow-x: auto; border-radius: .5rem; font-size: .8rem;
        background: rgba(127, 127, 127, .12); }
  code { font-family: ui-monospace, "SF Mono", Menlo, monospace; }
  footer { color: var(--muted); font-size: .85rem; }
</style>
</head>
<body>
<header>
  <h1><span>ev</span>server</h1>
  <p>An asynchronous WSGI server with a Rust engine. This page is its built-in demo.</p>
</header>
<main>
  <div class="row">
    <section class="card" id="clock" aria-live="polite">
      <h2>Server clock</h2>
      <div id="time">--:--:--</div>
      <div id="date">&nbsp;</div>
      <div class="status"><span class="dot" id="dot"></span><span id="status">connecting&hellip;</span></div>
    </section>
<!-- CHAT -->  </div>
  <section class="card" id="how">
    <h2>How it works</h2>
    <p>The time comes from the server, pushed once a second over one long response
      (<a href="clock"><code>/clock</code></a>, server-sent events). Between ticks the
      application waits with <code>x-wsgiorg.fdevent</code> and the server parks the request:
      no thread, no polling. The heart of it:</p>
<pre><code>def clock(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # never receives anything
    try:
        while True:
            yield f"{datetime.datetime.now()}\\n".encode()
            yield environ["x-wsgiorg.fdevent.readable"](sock, 1.0)  # park for a second
    finally:
        sock.close()  # also when the client goes away</code></pre>
  </section>
</main>
<footer>
  Plain text version: <a href="clock.txt"><code>curl -N http://HOST/clock.txt</code></a>
</footer>
<script>
(function () {
  "use strict";
  var time = document.getElementById("time");
  var date = document.getElementById("date");
  var dot = document.getElementById("dot");
  var status = document.getElementById("status");
  var ticks = 0;
  function show(state, text) {
    dot.className = "dot " + state;
    status.textContent = text;
  }
  if (!window.EventSource) {
    show("down", "this browser cannot receive server-sent events");
    return;
  }
  var source = new EventSource("clock");
  source.onopen = function () { show("live", "connected, waiting for the next tick"); };
  source.onmessage = function (event) {
    var t = JSON.parse(event.data);
    ticks += 1;
    time.textContent = t.time;
    date.textContent = t.date + (t.zone ? " (" + t.zone + ")" : "");
    show("live", "live: " + ticks + (ticks === 1 ? " tick" : " ticks") +
         " pushed by the server over one response");
  };
  source.onerror = function () {
    show("down", source.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting\\u2026");
  };
})();
</script>
</body>
</html>
"""

#: The chat room beside the clock.
CHAT = chat.Chat(chat.room_channel("chat", os.environ.get("EVSERVER_CHAT_REDIS")))

PAGE = (
    PAGE.replace("<!-- CHAT -->", chat.WIDGET.format(base="chat").strip("\n"))
    .replace("</style>", chat.STYLE.lstrip("\n") + "</style>")
    .replace("</body>", chat.SCRIPT.lstrip("\n") + "</body>")
)
