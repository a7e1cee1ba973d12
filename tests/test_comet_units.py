"""The COMET toolkit's pieces on their own (no server): channel ids and history under threads,
the bell after fork, SSE framing and Last-Event-ID parsing, and the blocking fallback of the
waits on servers without fdevent."""

from __future__ import annotations

import os
import select
import threading

import pytest
from evserver.comet import Channel, Waiter, multipart, sse


def test_concurrent_publishers_get_unique_increasing_ids():
    ch = Channel(history=10_000)
    got: list[list[int]] = []

    def publisher() -> None:
        got.append([ch.publish("x").id for _ in range(500)])

    threads = [threading.Thread(target=publisher) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = sorted(i for ids in got for i in ids)
    assert ids == list(range(1, 4001))
    assert all(ids == sorted(ids) for ids in got)
    assert [m.id for m in ch.since(0)] == ids


def test_subscription_fd_is_readable_only_after_a_new_message():
    ch = Channel()
    sub = ch.subscribe()
    assert sub.fetch() == []
    assert select.select([sub], [], [], 0)[0] == []
    ch.publish("a")
    assert select.select([sub], [], [], 0)[0] == [sub]
    assert [m.data for m in sub.fetch()] == ["a"]
    assert select.select([sub], [], [], 0)[0] == [], "a fetched subscription waits again"


def test_fetch_with_a_limit_leaves_the_rest_ready():
    ch = Channel()
    sub = ch.subscribe(0)
    for i in range(3):
        ch.publish(str(i))
    assert [m.data for m in sub.fetch(limit=1)] == ["0"]
    assert select.select([sub], [], [], 0)[0] == [sub]
    assert [m.data for m in sub.fetch()] == ["1", "2"]


def test_a_client_ahead_of_the_channel_restarts_from_its_present():
    ch = Channel()
    ch.publish("a")
    sub = ch.subscribe(last_id=57)
    assert sub.reset and sub.last_id == 1
    ch.publish("b")
    assert [m.data for m in sub.fetch()] == ["b"]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        Channel(history=0)
    with pytest.raises(TypeError):
        Channel().publish({"not": "text"})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        sse.event("x", event="two\nlines")
    with pytest.raises(ValueError):
        multipart.headers("bad boundary")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_gets_its_own_bell():
    ch = Channel()
    parent_fd = ch.subscribe().fileno()
    pid = os.fork()
    if pid == 0:  # the child rings its own bell, never the parent's
        sub = ch.subscribe()
        sub.fileno()
        ch.publish("in the child")
        os._exit(0 if select.select([sub], [], [], 0)[0] else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert select.select([parent_fd], [], [], 0)[0] == [], "the child's publish rang nothing here"


def test_sse_framing():
    assert sse.event("hi") == b"data: hi\n\n"
    assert sse.event("a\r\nb\nc", id=7, event="chat", retry=1.5) == (
        b"retry: 1500\nid: 7\nevent: chat\ndata: a\ndata: b\ndata: c\n\n"
    )
    assert sse.comment() == b":\n\n"
    assert sse.comment("keep\nalive") == b": keep\n: alive\n\n"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"HTTP_LAST_EVENT_ID": "42"}, 42),
        ({"HTTP_LAST_EVENT_ID": " 7 ", "QUERY_STRING": "lastEventId=3"}, 7),
        ({"QUERY_STRING": "lastEventId=3"}, 3),
        ({"HTTP_LAST_EVENT_ID": "nope"}, None),
        ({"HTTP_LAST_EVENT_ID": "-1"}, None),
        ({}, None),
    ],
)
def test_last_event_id(environ, expected):
    assert sse.last_event_id(environ) == expected


def test_without_fdevent_the_waits_block_in_select():
    """On a server without fdevent (a threaded one), the helpers still work: waits block."""
    ch = Channel()
    environ: dict = {"REQUEST_METHOD": "GET", "QUERY_STRING": ""}
    body = sse.stream(environ, ch, heartbeat=0.05)
    assert next(body) == b":\n\n"
    assert next(body) == b""  # the wait, done in select: it timed out
    assert next(body) == b":\n\n"  # so a heartbeat
    body.close()
    body = sse.stream(environ, ch, heartbeat=10)
    assert next(body) == b":\n\n"
    threading.Timer(0.05, ch.publish, args=("late",)).start()
    assert next(body) == b""  # blocked until the publish
    assert next(body) == b"id: 1\ndata: late\n\n"
    body.close()


def test_waiter_any_reports_which_fd_woke_it_without_fdevent():
    a, b = Channel(), Channel()
    sa, sb = a.subscribe(), b.subscribe()
    waiter = Waiter({})
    b.publish("b")
    assert waiter.any([sa, sb], 1.0) == b""
    assert waiter.ready == sb.fileno() and not waiter.timed_out
    sb.fetch()
    waiter.any([sa, sb], 0.01)
    assert waiter.timed_out and waiter.ready is None
