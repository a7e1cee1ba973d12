"""The chat room of the built-in demo and of ``examples/chat.py``: a WSGI app on a channel.

Routes (under ``prefix``, ``/chat`` by default):

- ``GET {prefix}/ws?last_id=N`` (a WebSocket upgrade, under evserver): each message as
  JSON ``{"id", "event", "data"}``; the client sends ``{"name": ..., "text": ...}`` to speak;
- ``GET {prefix}/events``: server-sent events, one ``say`` event per message (resumes with
  ``Last-Event-ID``; ``?lastEventId=0`` replays the history first);
- ``GET {prefix}/poll?last_id=N``: the long-poll fallback, one message per response;
- ``POST {prefix}/say`` (form fields ``name`` and ``text``): publishes a message;
- ``GET {prefix}`` (and ``{prefix}/``): a page with the room alone.

Each message's data is JSON: ``{"name": ..., "text": ..., "time": "HH:MM:SS"}``. The page
uses a WebSocket where it can (falling back to server-sent events when one cannot open),
``EventSource`` with ``?transport=sse``, and long-poll with ``?transport=poll`` or where there
is neither.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

from evserver._responses import StartResponse, html, plain
from evserver.comet import Channel, Message, longpoll, sse, websocket

__all__ = ["MAX_NAME", "MAX_TEXT", "SCRIPT", "STYLE", "WIDGET", "Chat", "room_channel"]

MAX_NAME = 40
MAX_TEXT = 500
MAX_BODY = 4096


def room_channel(name: str, redis_url: str | None = None, history: int = 200) -> Channel:
    """The room's channel: in memory (one worker), or on Redis at ``redis_url`` (every worker
    and machine)."""
    if redis_url:
        from evserver.comet.redis import RedisHub

        return RedisHub(redis_url, prefix="evserver-chat:", history=history).channel(name)
    return Channel(name, history=history)


class Chat:
    """The chat room's WSGI application over ``channel`` (a :class:`~evserver.comet.Channel`
    or a Redis channel, for several workers)."""

    def __init__(self, channel: Channel, prefix: str = "/chat") -> None:
        self.channel = channel
        self.prefix = prefix.rstrip("/")

    def handles(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        route = path[len(self.prefix) :] if self.handles(path) else None
        method = environ["REQUEST_METHOD"]
        if route == "/say":
            if method != "POST":
                return plain(
                    start_response, "405 Method Not Allowed", "use POST\n", [("Allow", "POST")]
                )
            return self.say(environ, start_response)
        if route not in ("", "/", "/events", "/poll", "/ws"):
            return plain(start_response, "404 Not Found", f"not found: {path}\n")
        if method not in ("GET", "HEAD"):
            return plain(
                start_response, "405 Method Not Allowed", "use GET\n", [("Allow", "GET, HEAD")]
            )
        if route == "/events":
            return sse.response(environ, start_response, self.channel, heartbeat=15, retry=2)
        if route == "/poll":
            return longpoll.response(environ, start_response, self.channel, timeout=25)
        if route == "/ws":
            return websocket.response(
                environ,
                start_response,
                self.channel,
                longpoll.last_id(environ),
                on_message=self.say_from_websocket,
            )
        return html(environ, start_response, page(environ.get("SCRIPT_NAME", "") + self.prefix))

    def say(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Publishes the form's ``text`` from ``name``; 400 for an empty or too long one."""
        raw = environ.get("CONTENT_LENGTH")
        if raw:
            length = int(raw) if raw.isdigit() else MAX_BODY + 1
            body = environ["wsgi.input"].read(length) if length <= MAX_BODY else b""
        elif environ.get("wsgi.input_terminated"):  # a chunked body: read to its end
            body = environ["wsgi.input"].read(MAX_BODY + 1)
            length = len(body)
        else:
            body, length = b"", 0
        if length > MAX_BODY:
            return plain(start_response, "413 Content Too Large", "message too large\n")
        form = parse_qs(body.decode("utf-8", "replace"))
        published = self.publish(form.get("name", [""])[0], form.get("text", [""])[0])
        if isinstance(published, str):
            return plain(start_response, "400 Bad Request", published + "\n")
        body = json.dumps({"id": published.id}).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    def say_from_websocket(self, raw: str | bytes) -> None:
        """A WebSocket client spoke: ``{"name": ..., "text": ...}``; anything else is dropped."""
        try:
            said = json.loads(raw)
        except ValueError:
            return
        if isinstance(said, dict):
            self.publish(str(said.get("name", "")), str(said.get("text", "")))

    def publish(self, name: str, text: str) -> Message | str:
        """Publishes ``text`` from ``name``; the message, or why it was refused."""
        name = (name.strip() or "guest")[:MAX_NAME]
        text = text.strip()
        if not text:
            return "empty message"
        if len(text) > MAX_TEXT:
            return f"at most {MAX_TEXT} characters"
        now = datetime.datetime.now().astimezone()
        data = json.dumps({"name": name, "text": text, "time": f"{now:%H:%M:%S}"})
        return self.channel.publish(data, event="say")


#: The room's CSS (uses the demo page's colour variables, with fallbacks).
STYLE = """
  #chat .log { list-style: none; margin: 0 0 1rem; padding: 0; height: 14rem; overflow-y: auto;
               display: flex; flex-direction: column; gap: .35rem; }
  #chat .log li { line-height: 1.35; overflow-wrap: anywhere; }
  #chat .log .who { font-weight: 600; color: var(--accent, #d9480f); margin-right: .4rem; }
  #chat .log .at { color: var(--muted, #667085); font-size: .8rem; margin-left: .4rem; }
  #chat .log .empty { color: var(--muted, #667085); }
  #chat form { display: flex; gap: .5rem; flex-wrap: wrap; }
  #chat input { font: inherit; padding: .45rem .6rem; border-radius: .4rem;
                border: 1px solid rgba(127, 127, 127, .4); background: transparent; color: inherit; }
  #chat input[name=name] { width: 8rem; }
  #chat input[name=text] { flex: 1; min-width: 10rem; }
  #chat button { font: inherit; padding: .45rem .9rem; border: 0; border-radius: .4rem;
                 background: var(--accent, #d9480f); color: #fff; cursor: pointer; }
"""

#: The room's markup; ``data-base`` is the URL of the routes (absolute, or relative to the page).
WIDGET = """
    <section class="card" id="chat" data-base="{base}">
      <h2>Chat room</h2>
      <ul class="log" aria-live="polite"><li class="empty">No messages yet: say hello.</li></ul>
      <form autocomplete="off">
        <input name="name" maxlength="40" placeholder="name" aria-label="your name">
        <input name="text" maxlength="500" placeholder="message" aria-label="message" required>
        <button type="submit">Send</button>
      </form>
      <div class="status"><span class="dot" id="chat-dot"></span><span id="chat-status">connecting&hellip;</span></div>
    </section>
"""

#: The room's script: a WebSocket, EventSource (?transport=sse, or when the WebSocket cannot
#: open), or the long-poll loop (no EventSource, or ?transport=poll).
SCRIPT = """
<script>
(function () {
  "use strict";
  var root = document.getElementById("chat");
  var base = root.getAttribute("data-base");
  var log = root.querySelector(".log");
  var form = root.querySelector("form");
  var dot = document.getElementById("chat-dot");
  var status = document.getElementById("chat-status");
  var last = 0;
  var asked = /[?&]transport=(poll|sse)\\b/.exec(location.search);
  var poll = !window.EventSource || (asked && asked[1] === "poll");
  var socket = null;
  var transport = poll ? "long-poll" : "server-sent events";
  function show(state, text) { dot.className = "dot " + state; status.textContent = text; }
  function add(id, data) {
    if (id <= last) { return; }
    last = id;
    var m = JSON.parse(data);
    var empty = log.querySelector(".empty");
    if (empty) { empty.remove(); }
    var li = document.createElement("li");
    var who = document.createElement("span"); who.className = "who"; who.textContent = m.name;
    var text = document.createElement("span"); text.className = "text"; text.textContent = m.text;
    var at = document.createElement("span"); at.className = "at"; at.textContent = m.time;
    li.appendChild(who); li.appendChild(text); li.appendChild(at);
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
  }
  var nameInput = form.elements.name;
  try { nameInput.value = localStorage.getItem("evserver-chat-name") || ""; } catch (e) {}
  if (!nameInput.value) { nameInput.value = "guest-" + Math.floor(1000 + Math.random() * 9000); }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = form.elements.text.value.trim();
    if (!text) { return; }
    try { localStorage.setItem("evserver-chat-name", nameInput.value); } catch (e) {}
    if (socket && socket.readyState === 1) {
      socket.send(JSON.stringify({ name: nameInput.value, text: text }));
      form.elements.text.value = "";
      return;
    }
    var body = new URLSearchParams({ name: nameInput.value, text: text });
    fetch(base + "/say", { method: "POST", body: body }).then(function (r) {
      if (r.ok) { form.elements.text.value = ""; } else { show("down", "not sent: " + r.status); }
    }, function () { show("down", "not sent: no connection"); });
  });
  if (poll) {
    var loop = function () {
      fetch(base + "/poll?last_id=" + last, { cache: "no-store" })
        .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
        .then(function (m) {
          show("live", "live (" + transport + ")");
          if (!m.timeout) { add(m.id, m.data); }
          loop();
        }, function () { show("down", "reconnecting\\u2026"); setTimeout(loop, 2000); });
    };
    show("live", "live (" + transport + ")");
    loop();
    return;
  }
  function followEvents() {
    transport = "server-sent events";
    var source = new EventSource(base + "/events?lastEventId=" + last);
    source.onopen = function () { show("live", "live (" + transport + ")"); };
    source.addEventListener("say", function (event) { add(parseInt(event.lastEventId, 10), event.data); });
    source.onerror = function () { show("down", "reconnecting\\u2026"); };
  }
  // A WebSocket where the browser has one; server-sent events if it cannot open (a proxy in
  // the way), or with ?transport=sse.
  function followWebSocket() {
    var url = new URL(base + "/ws?last_id=" + last, location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    var opened = false;
    socket = new WebSocket(url.href);
    socket.onopen = function () {
      opened = true;
      transport = "WebSocket";
      show("live", "live (" + transport + ")");
    };
    socket.onmessage = function (event) { var m = JSON.parse(event.data); add(m.id, m.data); };
    socket.onclose = function () {
      socket = null;
      if (!opened) { followEvents(); return; }
      show("down", "reconnecting\\u2026");
      setTimeout(followWebSocket, 2000);
    };
  }
  if (window.WebSocket && !asked) { followWebSocket(); } else { followEvents(); }
})();
</script>
"""


def page(base: str) -> str:
    """The room alone on a page."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>evserver chat</title>
<style>
  :root {{ color-scheme: light dark; --muted: #667085; --accent: #d9480f; --ok: #2b8a3e;
          --bad: #c92a2a; }}
  body {{ margin: 0 auto; max-width: 40rem; padding: 1.5rem;
          font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; }}
  .card h2 {{ margin: 0 0 1rem; font-size: 1.1rem; }}
  .status {{ display: flex; align-items: center; gap: .5rem; margin-top: 1rem;
             font-size: .9rem; color: var(--muted); }}
  .dot {{ width: .6rem; height: .6rem; border-radius: 50%; background: var(--muted); }}
  .dot.live {{ background: var(--ok); }} .dot.down {{ background: var(--bad); }}
{STYLE}
</style>
</head>
<body>
{WIDGET.format(base=base)}
{SCRIPT}
</body>
</html>
"""
