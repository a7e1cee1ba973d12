"""Channels through Redis: two evserver processes (two "machines") share one real
redis-server; a message published on either, or by a plain process, reaches the clients of
both, with the same ids, so a client resumes on either; one subscriber connection per process.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from comet_support import new_channel, open_sse, publish, streams_on
from redis_support import free_port, redis_server
from support import exchange, request

#: The behaviour these tests show is the same inline and in thread mode.
BOTH_MODES = True


@pytest.fixture(scope="module")
def redis_url():
    with redis_server() as url:
        yield url


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:8]}:"


@pytest.fixture(scope="module")
def machines(module_serve, redis_url, prefix):
    env = {"COMET_TEST_REDIS": redis_url, "COMET_TEST_PREFIX": prefix}
    return [module_serve("cometapp:application", env=env) for _ in range(2)]


def test_a_publish_on_one_machine_reaches_the_clients_of_both(machines):
    a, b = machines
    ch = new_channel()
    with streams_on((a, b, a, b), ch) as streams:
        [first] = publish(a, ch, "from-a")
        [second] = publish(b, ch, "from-b")
        assert second == first + 1, "ids come from one counter in Redis"
        for stream in streams:
            assert stream.next_event() == {"id": str(first), "data": "from-a"}
            assert stream.next_event() == {"id": str(second), "data": "from-b"}


def test_a_client_resumes_on_the_other_machine(machines):
    a, b = machines
    ch = new_channel()
    ids = publish(a, ch, n=3)
    stream = open_sse(b, ch, headers=[("Last-Event-ID", str(ids[0]))])
    with stream.conn:
        assert [int(stream.next_event()["id"]) for _ in range(2)] == ids[1:]


def test_long_poll_through_redis(machines):
    a, b = machines
    ch = new_channel()
    conn = b.connect()
    with conn:
        conn.send(request("GET", f"/poll?ch={ch}&timeout=10"))
        assert conn.read_some(0.3) == b""
        [mid] = publish(a, ch, "polled")
        assert conn.response().json() == {"id": mid, "event": None, "data": "polled"}


def test_a_plain_process_publishes_to_every_machine(machines, redis_url, prefix):
    from evserver.comet.redis import RedisHub

    a, b = machines
    ch = new_channel()
    hub = RedisHub(redis_url, prefix=prefix)
    with streams_on((a, b), ch) as streams:
        try:
            message = hub.channel(ch).publish(b"\x00bytes\xff", event="raw")
            for stream in streams:
                got = stream.next_event()
                assert got["id"] == str(message.id) and got["event"] == "raw"
        finally:
            hub.close()


def test_history_in_redis_is_bounded(machines):
    a, b = machines
    ch = new_channel("small")  # history of 5
    ids = publish(a, ch, n=8)
    stream = open_sse(b, ch, headers=[("Last-Event-ID", "0")])
    with stream.conn:
        assert [int(stream.next_event()["id"]) for _ in range(5)] == ids[3:]


def test_one_subscriber_connection_per_process_not_per_client(machines, redis_url):
    import redis

    a, b = machines
    ch = new_channel()
    with streams_on([a] * 25 + [b], ch) as streams:
        publish(a, ch, "x")
        for s in streams:
            s.next_event()
        clients = redis.Redis.from_url(redis_url).client_list()
        names = [c["name"] for c in clients]
        for server in (a, b):
            pid = server.worker_pid
            mine = [n for n in names if n.endswith(f"-{pid}")]
            assert sorted(mine) == [f"evserver-pub-{pid}", f"evserver-sub-{pid}"]


def test_the_publish_answer_carries_the_global_id(machines):
    a, _ = machines
    ch = new_channel()
    resp = exchange(a, request("GET", f"/publish?ch={ch}&n=2"))
    assert json.loads(resp.body)["ids"] == [1, 2]


def test_a_redis_restart_loses_nothing_new(serve, prefix):
    """The listener reconnects; Redis came back empty, so its id counter is raised above what
    the clients have, and new messages still flow with larger ids."""
    port = free_port()
    with redis_server(port) as url:
        server = serve(
            "cometapp:application", env={"COMET_TEST_REDIS": url, "COMET_TEST_PREFIX": prefix}
        )
        ch = new_channel()
        stream = open_sse(server, ch)
        ids = publish(server, ch, n=3)
        assert [int(stream.next_event()["id"]) for _ in ids] == ids
    with stream.conn, redis_server(port):
        deadline = time.monotonic() + 15
        while True:  # the listener reconnects with a backoff of at most 5 s
            try:
                [later] = publish(server, ch, "after")
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        got = stream.next_event(timeout=15)
        assert int(got["id"]) > ids[-1]
        assert got["data"] == "after"
        assert later == int(got["id"])


def test_several_workers_of_one_server_share_the_channel(serve, redis_url, prefix):
    """``-w 3``: clients spread over the workers (SO_REUSEPORT); a publish handled by one
    worker reaches the clients of all, and each worker holds its own two connections."""
    import redis

    server = serve(
        "cometapp:application",
        "-w",
        "3",
        env={"COMET_TEST_REDIS": redis_url, "COMET_TEST_PREFIX": prefix},
    )
    ch = new_channel()
    with streams_on([server] * 30, ch) as streams:
        [mid] = publish(server, ch, "to-every-worker")
        for stream in streams:
            assert stream.next_event() == {"id": str(mid), "data": "to-every-worker"}
        names = [c["name"] for c in redis.Redis.from_url(redis_url).client_list()]
        workers = server.worker_pids()
        assert len(workers) == 3
        serving = [pid for pid in workers if f"evserver-sub-{pid}" in names]
        assert len(serving) >= 2, f"the clients all landed on one worker: {names}"
        for pid in serving:
            assert sorted(n for n in names if n.endswith(f"-{pid}")) == [
                f"evserver-pub-{pid}",
                f"evserver-sub-{pid}",
            ]
