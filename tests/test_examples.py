"""The runnable examples in examples/: the seed's clock and the chat room, served from the
repository root as their docstrings say."""

from __future__ import annotations

import json
import time

import pytest
from comet_support import EventStream
from support import TESTS, exchange, request

ROOT = TESTS.parent


@pytest.fixture(scope="module")
def clock(module_serve):
    return module_serve("examples.clock", cwd=ROOT)


@pytest.fixture(scope="module")
def chat(module_serve):
    return module_serve("examples.chat", cwd=ROOT)


def test_clock_prints_one_line_a_second(clock):
    t0 = time.monotonic()
    resp = exchange(clock, request("GET", "/?count=3"))
    elapsed = time.monotonic() - t0
    lines = resp.body.decode().splitlines()
    assert resp.status == 200 and resp.framing == "chunked"
    assert len(lines) == 3 and all(len(line) == len("2026-01-01 00:00:00") for line in lines)
    assert elapsed >= 1.9, "two one-second waits between three lines"


def say_and_hear(speaker, listener, text: str) -> None:
    """Says ``text`` in the room on ``speaker`` and hears it on ``listener``'s event stream."""
    conn = listener.connect()
    with conn:
        conn.send(request("GET", "/chat/events"))
        conn.head()
        stream = EventStream(conn)
        body = b"name=ex&text=" + text.replace(" ", "+").encode()
        headers = [("Content-Type", "application/x-www-form-urlencoded")]
        said = exchange(speaker, request("POST", "/chat/say", headers, body)).json()
        event = stream.next_event()
        assert int(event["id"]) == said["id"]
        assert json.loads(event["data"])["text"] == text


def test_chat_page_and_a_message_through_sse(chat):
    page = exchange(chat, request("GET", "/"))
    assert page.status == 200 and b'data-base="/chat"' in page.body
    say_and_hear(chat, chat, "from the example")


def test_chat_on_redis_across_two_processes(serve):
    """``EVSERVER_CHAT_REDIS``: two chat servers (two workers, or two machines) on one Redis;
    a message said on one reaches a listener on the other."""
    from redis_support import redis_server

    with redis_server() as url:
        env = {"EVSERVER_CHAT_REDIS": url}
        one, two = (serve("examples.chat", env=env, cwd=ROOT) for _ in range(2))
        say_and_hear(one, two, "across processes")
