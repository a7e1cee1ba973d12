"""What the COMET suites share: channel names, publishing through the test app, and a reader
of server-sent events on a raw connection."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from support import RawConnection, exchange, request


def new_channel(prefix: str = "ch") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def publish(server, ch: str, data: str = "", n: int = 1, event: str | None = None) -> list[int]:
    target = f"/publish?ch={ch}&n={n}" + (f"&data={data}" if data else "")
    target += f"&event={event}" if event else ""
    resp = exchange(server, request("GET", target))
    assert resp.status == 200, resp
    return resp.json()["ids"]


class EventStream:
    """An open ``text/event-stream`` response, read event by event."""

    def __init__(self, conn: RawConnection) -> None:
        self.conn = conn
        self.text = ""
        self.comments = 0

    def _more(self, timeout: float) -> None:
        self.conn.sock.settimeout(timeout)
        chunk = self.conn.read_chunk()
        self.conn.sock.settimeout(10)
        if chunk is None:
            raise EOFError("the event stream ended")
        self.text += chunk.decode()

    def next_block(self, timeout: float = 10.0) -> str:
        while "\n\n" not in self.text:
            self._more(timeout)
        block, self.text = self.text.split("\n\n", 1)
        return block

    def next_event(self, timeout: float = 10.0) -> dict[str, str]:
        """The next event's fields (comments counted and skipped)."""
        while True:
            block = self.next_block(timeout)
            fields: dict[str, str] = {}
            for line in block.split("\n"):
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(": ")
                fields[name] = fields[name] + "\n" + value if name in fields else value
            if fields.keys() - {"retry"}:
                return fields
            self.comments += 1


def open_sse(server, ch: str, query: str = "", headers=None) -> EventStream:
    conn = server.connect()
    conn.send(request("GET", f"/sse?ch={ch}{query}", headers=headers))
    head = conn.head()
    assert head.status == 200, head
    assert head.header("Content-Type") == "text/event-stream; charset=utf-8"
    stream = EventStream(conn)
    assert stream.next_block() == ":", "the stream opens with a comment"
    return stream


@contextmanager
def streams_on(servers: Sequence, ch: str) -> Iterator[list[EventStream]]:
    """One open event stream on ``ch`` per server in ``servers``, closed at the end."""
    streams = [open_sse(server, ch) for server in servers]
    try:
        yield streams
    finally:
        for stream in streams:
            stream.conn.close()
