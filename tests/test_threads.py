"""Thread mode (``--threads N``): views that block run on a pool of N threads while the loop
keeps every other connection moving; parked requests and slow readers hold no thread; every
ending calls ``close()`` once; ``--timeout`` logs a stuck request's stack and recycles the
worker; the status page shows the pool. Real threads, real sockets, both backends."""

from __future__ import annotations

import concurrent.futures
import json
import signal
import threading
import time
import uuid

import pytest
from conftest import THREADS
from support import (
    Server,
    assert_serves,
    exchange,
    idle_connections_possible,
    request,
    status_json,
)

APP_MODES = ["threads"]


def get(server: Server, path: str) -> bytes:
    return exchange(server, request("GET", path, host=server.address.netloc)).body


def key() -> str:
    return uuid.uuid4().hex


def wait_until(check, timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.02)


@pytest.fixture
def server(serve) -> Server:
    return serve("threadapp", "-s", "127.0.0.1:0")


def status(server: Server) -> dict:
    return status_json(server)["workers"][0]


def test_n_threads_run_n_blocking_views_at_once(server):
    """Each view waits until all are inside: only true concurrency lets them through."""
    k = key()
    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        bodies = list(
            pool.map(lambda _: get(server, f"/barrier?key={k}&n={THREADS}"), range(THREADS))
        )
    assert bodies == [b"met"] * THREADS
    assert json.loads(get(server, "/threads"))["multithread"] is True


def test_requests_beyond_the_pool_wait_in_the_loop_and_are_shown(server, tmp_path):
    k = key()
    conns = [server.connect() for _ in range(THREADS + 2)]
    for conn in conns:
        conn.send(request("GET", f"/hold?key={k}&dir={tmp_path}"))

    def figures():
        w = status(server)
        return w["threads"], w["threads_busy"], w["queued"]

    # The status page is the master's: it answers while every thread of the worker is busy
    # (the app's own routes would wait in the queue).
    wait_until(lambda: figures() == (THREADS, THREADS, 2), what="4 busy, 2 queued")
    (tmp_path / k).touch()
    for conn in conns:
        assert conn.response().body == b"released"
        conn.close()
    wait_until(lambda: server.events(k).count("close") == THREADS + 2, what="every close()")


def test_parked_requests_hold_no_thread_and_wake_while_the_pool_is_busy(server):
    """Many parked long-polls and a pool kept saturated by blocking views: one publish wakes
    every parked client, and the worker has no more threads than its pool and a few."""
    channel, parked = key(), idle_connections_possible(2000)
    clients = []
    for _ in range(parked):
        sock = server.address.connect()
        sock.sendall(request("GET", f"/wait?ch={channel}"))
        clients.append(sock)
    wait_until(lambda: status(server)["parked"] == parked, what=f"{parked} parked")
    assert status(server)["threads_busy"] == 0, "parked requests take no thread"
    stop = threading.Event()

    def load():
        while not stop.is_set():
            get(server, "/sleep?t=0.05")

    loaders = [threading.Thread(target=load) for _ in range(2 * THREADS)]
    for t in loaders:
        t.start()
    try:
        wait_until(lambda: status(server)["threads_busy"] == THREADS, what="the pool saturated")
        get(server, f"/publish?ch={channel}")
        for sock in clients:
            sock.settimeout(10)
            data = b""
            while not data.endswith(b"0\r\n\r\n"):
                chunk = sock.recv(4096)
                assert chunk, data
                data += chunk
            assert b"woken" in data, data
        threads = json.loads(get(server, "/threads"))["count"]
        # The loop, the pool, and the few the interpreter and the platform keep.
        assert threads <= THREADS + 4, threads
    finally:
        stop.set()
        for t in loaders:
            t.join()
        for sock in clients:
            sock.close()


def test_a_client_gone_while_a_thread_runs_its_view(server, tmp_path):
    k = key()
    conn = server.connect()
    conn.send(request("GET", f"/hold?key={k}&dir={tmp_path}"))
    wait_until(lambda: "holding" in server.events(k), what="the view running")
    conn.close()
    time.sleep(0.1)
    (tmp_path / k).touch()
    wait_until(lambda: server.events(k) == ["holding", "close"], what="close() once")
    time.sleep(0.2)
    assert server.events(k) == ["holding", "close"]
    assert_serves(server)


@pytest.mark.parametrize("ending", ["complete", "client-gone", "graceful-stop"])
def test_close_is_called_once_in_every_ending(serve, ending):
    server = serve("threadapp")
    k = key()
    conn = server.connect()
    conn.send(request("GET", f"/stream?n={'3' if ending == 'complete' else '1000'}&key={k}"))
    assert conn.head().status == 200
    assert conn.read_chunk() == b"chunk 0\n"
    if ending == "complete":
        assert conn.read_chunks() == [b"chunk 1\n", b"chunk 2\n"]
    elif ending == "client-gone":
        conn.close()
    if ending == "graceful-stop":
        server.proc.send_signal(signal.SIGTERM)
        rest = conn.read_to_eof()
        assert rest.endswith(b"0\r\n\r\n"), "a stopped stream gets its last chunk"
        assert server.stop() == 0
        assert server.stderr.count("Traceback") == 0
        return
    wait_until(lambda: server.events(k) == ["close"], what="close() once")
    time.sleep(0.2)
    assert server.events(k) == ["close"]


def test_a_graceful_stop_lets_busy_threads_finish(serve):
    server = serve("threadapp")
    conns = [server.connect() for _ in range(THREADS)]
    for conn in conns:
        conn.send(request("GET", "/sleep?t=1"))
    time.sleep(0.3)  # the views are sleeping now
    server.proc.send_signal(signal.SIGTERM)
    for conn in conns:
        resp = conn.response()
        assert (resp.status, resp.body) == (200, b"slept")
        assert resp.header("Connection") == "close"
        conn.close()
    assert server.stop() == 0


def test_a_reload_with_busy_threads_answers_every_request(serve):
    server = serve("threadapp")
    old = server.worker_pid
    conns = [server.connect() for _ in range(THREADS)]
    for conn in conns:
        conn.send(request("GET", "/sleep?t=1"))
    time.sleep(0.3)
    server.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: server.worker_pids() and old not in server.worker_pids(), what="reload")
    for conn in conns:
        assert conn.response().body == b"slept"
        conn.close()
    assert get(server, "/sleep?t=0") == b"slept"


def test_a_request_stuck_past_the_timeout_is_logged_with_its_stack_and_recycles_the_worker(
    serve,
):
    server = serve("threadapp", "--timeout", "1")
    old = server.worker_pid
    conn = server.connect()
    conn.send(request("GET", "/stuck?t=3"))
    line = server.wait_for_output(r"has been in the application for \d+ s", timeout=5)
    assert "[ERROR]" in line
    server.wait_for_output(r"in a_stuck_view", timeout=2)
    # The stuck request still gets its answer; then a fresh worker replaces this one.
    assert conn.response().body == b"unstuck"
    conn.close()
    wait_until(lambda: server.worker_pids() and old not in server.worker_pids(), what="recycled")
    assert_serves(server)
