"""Streamed responses: every block reaches the client before the application is asked for the
next one (PEP 3333), and the blocks yielded before a failure are all delivered before the
connection is cut."""

from __future__ import annotations

import itertools

import pytest
from support import assert_serves, request

#: The behaviour these tests show is the same inline and in thread mode.
BOTH_MODES = True

_keys = itertools.count()


@pytest.fixture(scope="module")
def server(module_serve):
    return module_serve("streamapp:application")


def test_each_block_reaches_the_client_before_the_next_is_made(server, tmp_path):
    """The app blocks after each line until the client has seen it: a server that holds the
    line back until the app is done makes the app give up waiting (``NOT SEEN``)."""
    with server.connect() as conn:
        conn.send(request("GET", f"/acked?dir={tmp_path}&n=4"))
        head = conn.head()
        assert head.status == 200
        seen = []
        while (chunk := conn.read_chunk()) is not None:
            seen.append(chunk)
            for line in chunk.decode().splitlines():
                if line.startswith("line "):
                    (tmp_path / f"ack-{line.split()[1]}").touch()
    body = b"".join(seen).decode()
    assert "NOT SEEN" not in body, body
    assert body == "".join(f"line {i}\n" for i in range(4))


def test_blocks_yielded_before_an_exception_are_all_delivered(server):
    key = f"k{next(_keys)}"
    with server.connect() as conn:
        conn.send(request("GET", f"/then-raise?n=5&key={key}"))
        head = conn.head()
        assert head.status == 200
        data = conn.read_to_eof()
    assert all(f"chunk {i}\n".encode() in data for i in range(5)), data
    assert not data.endswith(b"0\r\n\r\n"), "a broken stream must not look complete"
    assert server.wait_for_event(key, "close") == ["close"]
    server.wait_for_output(f"then-raise {key}")
    assert_serves(server)
