"""Running in production: workers, supervision, signals, graceful stops and reloads, limits,
access-log format, pid file and the status page. Real processes, real signals, both backends."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from support import (
    APPS,
    RawConnection,
    Response,
    Server,
    exchange,
    request,
    status_address,
    status_get,
    status_json,
)


def get(server: Server, path: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return exchange(server, request("GET", path, headers, host=server.address.netloc))


def wait_until(check: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


class Load:
    """Clients on keep-alive connections asking ``/pid`` as fast as they can; a connection the
    server closes after a ``Connection: close`` response is replaced. Anything else counts as
    a failed request."""

    def __init__(self, server: Server, clients: int = 6) -> None:
        self.server = server
        self.ok = 0
        self.errors: list[str] = []
        self.pids: set[str] = set()
        self.closes = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def __enter__(self) -> Load:  # noqa: PYI034 - a final class
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)

    def _client(self) -> None:
        raw = request("GET", "/pid", host=self.server.address.netloc)
        conn = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = self.server.connect()
                conn.send(raw)
                resp = conn.response()
                with self._lock:
                    if resp.status == 200:
                        self.ok += 1
                        self.pids.add(resp.body.decode())
                    else:
                        self.errors.append(f"status {resp.status}")
                if (resp.header("Connection") or "").lower() == "close":
                    conn.close()
                    conn = None
                    with self._lock:
                        self.closes += 1
            except Exception as e:  # noqa: BLE001 - every failure is what the test counts
                with self._lock:
                    self.errors.append(repr(e))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()


def test_workers_each_accept_and_know_they_are_several(serve) -> None:
    server = serve("prodapp", "-w", "3")
    assert server.workers == 3
    pids = {get(server, "/pid").body for _ in range(60)}
    assert len(pids) >= 2, pids
    assert str(server.pid).encode() not in pids  # the master serves nothing itself
    assert get(server, "/multiprocess").body == b"True"


def test_idle_and_slow_status_clients_delay_no_one(serve) -> None:
    """Fifty connections that send nothing, and one that sends half a head, while /metrics is
    asked for: each answer comes at once, not after the idle clients' timeouts."""
    import socket

    server = serve("prodapp", "-s", "127.0.0.1:0")
    host, port = status_address(server)
    idle = [socket.create_connection((host, port), timeout=5) for _ in range(50)]
    slow = socket.create_connection((host, port), timeout=5)
    slow.sendall(b"GET /metrics HTTP/1.1\r\nHo")
    try:
        for _ in range(3):
            # Served one client at a time, this waited for each idle client's timeout.
            metrics = status_get(server, "/metrics", timeout=2)
            assert metrics.status == 200
            assert b"evserver_workers 1" in metrics.body
        # The slow client is still served once it finishes its head.
        slow.sendall(b"st: x\r\n\r\n")
        assert RawConnection(slow).response().status == 200
    finally:
        for sock in idle:
            sock.close()
        slow.close()


def test_status_page_json_and_metrics(serve, tmp_path: Path) -> None:
    server = serve("prodapp", "-w", "2", "-s", "127.0.0.1:0")
    doc = status_json(server)
    assert doc["master_pid"] == server.pid
    assert len(doc["workers"]) == 2
    assert {w["backend"] for w in doc["workers"]} == {server.backend}
    for _ in range(5):
        get(server, "/pid")
    parked = server.connect()
    parked.send(request("GET", "/park?key=s1", host=server.address.netloc))

    def figures() -> tuple[int, int]:
        workers = status_json(server)["workers"]
        return sum(w["parked"] for w in workers), sum(w["requests"] for w in workers)

    wait_until(lambda: figures() == (1, 5), what="1 parked and 5 served in status.json")
    metrics = status_get(server, "/metrics")
    assert metrics.header("Content-Type").startswith("text/plain; version=0.0.4")
    # Prometheus' own parser reads it, every sample labelled by worker slot and backend.
    families = {f.name: f for f in text_string_to_metric_families(metrics.body.decode())}
    parked_samples = families["evserver_parked_requests"].samples
    assert {s.labels["worker"] for s in parked_samples} == {"1", "2"}
    assert all("pid" not in s.labels for f in families.values() for s in f.samples)
    assert sum(s.value for s in parked_samples) == 1
    assert families["evserver_workers"].samples[0].value == 2
    durations = families["evserver_request_duration_seconds"]
    assert durations.type == "histogram"
    counts = [s for s in durations.samples if s.name.endswith("_count")]
    assert sum(s.value for s in counts) == 5
    infinite = [s for s in durations.samples if s.labels.get("le") == "+Inf"]
    assert sum(s.value for s in infinite) == 5
    assert "evserver_parked_seconds" in families
    build = families["evserver_build_info"].samples[0]
    assert build.labels["version"] == doc["server"].split("/")[1]
    assert build.labels["python"] == platform.python_version()
    started = families["process_start_time_seconds"].samples[0].value
    assert abs(started - (time.time() - status_json(server)["uptime_seconds"])) < 5
    page = status_get(server, "/")
    assert page.status == 200 and b"evserver status" in page.body
    assert status_get(server, "/nothing").status == 404
    parked.close()


def test_a_worker_killed_under_load_is_replaced(serve) -> None:
    server = serve("prodapp", "-w", "2", "-s", "127.0.0.1:0")
    before = {w["pid"] for w in status_json(server)["workers"]}
    victim = min(before)
    with Load(server, clients=4) as load:
        time.sleep(0.3)
        os.kill(victim, signal.SIGKILL)
        server.wait_for_output(
            rf"worker \d \(pid {victim}\) died unexpectedly \(signal 9 \(SIGKILL\)\)"
        )
        wait_until(
            lambda: (
                len(status_json(server)["workers"]) == 2
                and victim not in {w["pid"] for w in status_json(server)["workers"]}
            ),
            what="a new worker in place of the killed one",
        )
        served_before = load.ok
        time.sleep(0.5)
        assert load.ok > served_before  # still serving
    # Requests in flight on the killed worker's connections are lost; no more.
    assert len(load.errors) <= 4, load.errors
    assert get(server, "/pid").status == 200


def test_a_stuck_worker_is_killed_after_the_timeout(serve) -> None:
    server = serve("prodapp", "--timeout", "1")
    first = get(server, "/pid").body
    stuck = server.connect()
    stuck.send(request("GET", "/sleep?s=30", host=server.address.netloc))
    server.wait_for_output(r"has not turned its event loop for \d+ s", timeout=10)
    server.wait_for_output(r"was killed after --timeout")
    assert stuck.is_closed(timeout=5)
    wait_until(lambda: get(server, "/pid").body != first, what="a fresh worker answers")
    stuck.close()


def test_sigterm_finishes_in_flight_work_and_closes_parked_requests(serve, tmp_path: Path) -> None:
    events = tmp_path / "events"
    server = serve("prodapp", env={"PRODAPP_EVENTS": str(events)})
    idle = server.connect()
    idle.send(request("GET", "/pid", host=server.address.netloc))
    assert idle.response().header("Connection") is None  # keep-alive before the stop
    upload = server.connect()
    whole = request("POST", "/pid", body=b"0123456789", host=server.address.netloc)
    upload.send(whole[:-5])
    stream = server.connect()
    stream.send(request("GET", "/stream?n=100&i=0.25", host=server.address.netloc))
    assert stream.head().status == 200
    parked = server.connect()
    parked.send(request("GET", "/park?key=p1", host=server.address.netloc))
    wait_until(lambda: events.exists() and "parked p1" in events.read_text())

    server.proc.send_signal(signal.SIGTERM)
    server.wait_for_output(r"stopping gracefully")
    time.sleep(0.2)
    # The parked long-poll is ended: close() called, and the client told to come back.
    resp = parked.response()
    assert resp.status == 503
    assert resp.header("Connection") == "close"
    wait_until(lambda: "closed p1" in events.read_text(), what="close() of the parked request")
    # A keep-alive client still gets its next answer, with Connection: close.
    idle.send(request("GET", "/pid", host=server.address.netloc))
    last = idle.response()
    assert last.status == 200 and last.header("Connection") == "close"
    assert idle.is_closed()
    # A request still arriving is answered, with Connection: close.
    upload.send(whole[-5:])
    answered = upload.response()
    assert answered.status == 200 and answered.header("Connection") == "close"
    # A stream waiting in fdevent is parked too: it ends cleanly with its last chunk.
    chunks = stream.read_chunks()
    assert 1 <= len(chunks) < 100
    assert chunks == [f"chunk {i}\n".encode() for i in range(len(chunks))]
    assert server.stop(timeout=10) == 0


def test_sigquit_stops_at_once(serve, tmp_path: Path) -> None:
    events = tmp_path / "events"
    server = serve("prodapp", "--graceful-timeout", "60", env={"PRODAPP_EVENTS": str(events)})
    parked = server.connect()
    parked.send(request("GET", "/park?key=q1", host=server.address.netloc))
    wait_until(lambda: events.exists() and "parked q1" in events.read_text())
    assert server.stop(signal.SIGQUIT, timeout=5) == 0
    assert "closed q1" in events.read_text()  # close() is still called
    assert parked.is_closed()


def test_sighup_under_load_fails_no_request(serve) -> None:
    server = serve("prodapp", "-w", "2", "-s", "127.0.0.1:0")
    first = {w["pid"] for w in status_json(server)["workers"]}
    with Load(server, clients=6) as load:
        time.sleep(0.5)
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for_output(r"reload done")
        time.sleep(0.5)
        server.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: server.stderr.count("reload done") == 2, what="the second reload")
        time.sleep(0.8)
    assert load.errors == [], load.errors[:5]
    assert load.ok > 100
    after = {w["pid"] for w in status_json(server)["workers"]}
    assert len(after) == 2 and not after & first
    assert len(load.pids) >= 4  # both generations answered


def test_a_lone_connection_right_after_a_reload_is_served(serve, tmp_path: Path) -> None:
    # The old workers' accepts end while the new workers wait on the same socket; a client
    # arriving just then (alone: no later arrival wakes anyone) must still be served. The
    # master's READY=1 on NOTIFY_SOCKET marks the moment the old workers are told to stop.
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(20)
    server = serve("prodapp", "-w", "2", env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock")})
    assert notify.recv(4096).startswith(b"READY=1")
    for round in range(1, 21):
        server.proc.send_signal(signal.SIGHUP)
        assert notify.recv(4096).startswith(b"RELOADING=1")
        assert notify.recv(4096) == b"READY=1"
        with server.connect(timeout=5) as conn:
            conn.send(request("GET", "/pid", host=server.address.netloc))
            assert conn.response().status == 200, f"after reload {round}"
    notify.close()


def test_sigttin_and_sigttou_add_and_remove_workers(serve) -> None:
    server = serve("prodapp", "-s", "127.0.0.1:0")
    assert len(status_json(server)["workers"]) == 1
    # Two signals of one kind sent at once may arrive as one (POSIX): wait in between.
    server.proc.send_signal(signal.SIGTTIN)
    wait_until(lambda: len(status_json(server)["workers"]) == 2, what="2 workers")
    server.proc.send_signal(signal.SIGTTIN)
    wait_until(
        lambda: [w["state"] for w in status_json(server)["workers"]] == ["running"] * 3,
        what="3 running workers",
    )
    server.proc.send_signal(signal.SIGTTOU)
    wait_until(lambda: len(status_json(server)["workers"]) == 2, what="2 workers")
    assert status_json(server)["workers_desired"] == 2
    for _ in range(10):
        assert get(server, "/pid").status == 200


def test_max_requests_recycles_workers_without_failing_requests(serve) -> None:
    server = serve("prodapp", "--max-requests", "20", "--max-requests-jitter", "5")
    with Load(server, clients=3) as load:
        wait_until(lambda: len(load.pids) >= 3, timeout=20, what="three workers in turn")
    assert load.errors == [], load.errors[:5]
    assert re.search(r"served 2[0-5] requests \(--max-requests\)", server.stderr)


def test_reload_restarts_workers_when_a_python_file_changes(serve, tmp_path: Path) -> None:
    for name in ("prodapp.py", "recorder.py"):
        shutil.copy(APPS / name, tmp_path / name)
    server = serve("prodapp", "--reload", cwd=tmp_path)
    assert get(server, "/version").body == b"one"
    app = tmp_path / "prodapp.py"
    app.write_text(app.read_text().replace('VERSION = "one"', 'VERSION = "two"'))
    future = time.time() + 2
    os.utime(app, (future, future))
    wait_until(lambda: get(server, "/version").body == b"two", what="the new code served")
    assert re.search(r"prodapp\.py changed: starting 1 fresh workers", server.stderr)


def test_request_limits_from_the_command_line(serve) -> None:
    server = serve(
        "prodapp",
        "--limit-request-line", "100",
        "--limit-request-fields", "5",
        "--limit-request-field-size", "100",
        "--max-body", "10",
    )  # fmt: skip
    assert get(server, "/pid?" + "x" * 200).status == 414
    assert get(server, "/pid", [(f"X-H{i}", "v") for i in range(6)]).status == 431
    assert get(server, "/pid", [("X-Big", "v" * 200)]).status == 431
    big = exchange(server, request("POST", "/pid", body=b"y" * 11, host=server.address.netloc))
    assert big.status == 413
    assert get(server, "/pid", [(f"X-H{i}", "v") for i in range(4)]).status == 200


def test_max_connections_pauses_accepting(serve) -> None:
    server = serve("prodapp", "--max-connections", "2")
    first, second = server.connect(), server.connect()
    for conn in (first, second):
        conn.send(request("GET", "/pid", host=server.address.netloc))
        assert conn.response().status == 200
    server.wait_for_output(r"2 connections open \(--max-connections\)")
    third = server.connect()  # completes in the kernel's backlog
    third.send(request("GET", "/pid", host=server.address.netloc))
    assert third.read_some(0.5) == b""
    first.close()
    assert third.response().status == 200
    second.close()
    third.close()


def test_access_log_format_uses_gunicorn_atoms(serve) -> None:
    server = serve(
        "prodapp",
        "--access-log",
        "--access-log-format",
        '%(h)s %(m)s %(U)s %(q)s %(H)s %(s)s %(B)s "%(a)s" %({x-custom}o)s %({PATH_INFO}e)s %(D)s',
    )
    get(server, "/headers?a=1", [("User-Agent", "tester/1.0")])
    line = server.wait_for_output(r"GET /headers", stream="stdout")
    assert re.fullmatch(
        r'127\.0\.0\.1 GET /headers a=1 HTTP/1\.1 200 2 "tester/1\.0" custom-value /headers \d+',
        line.strip(),
    ), line


def test_pid_file_names_the_master_and_goes_away(serve, tmp_path: Path) -> None:
    pid_file = tmp_path / "evserver.pid"
    server = serve("prodapp", "--pid-file", str(pid_file))
    assert pid_file.read_text().strip() == str(server.pid)
    assert server.stop() == 0
    assert not pid_file.exists()


def test_streams_the_client_abandons_are_logged_with_the_bytes_sent(serve) -> None:
    server = serve("prodapp", "--access-log=-")
    for _ in range(10):
        with server.connect() as conn:
            conn.send(request("GET", "/stream?n=100&i=0.2", host=server.address.netloc))
            assert conn.head().status == 200
            assert conn.read_chunk() == b"chunk 0\n"
    deadline = time.monotonic() + 10
    while len(_stream_lines(server)) < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = _stream_lines(server)
    assert len(lines) == 10, server.stdout
    for line in lines:
        assert re.search(
            r'"GET /stream\?n=100&i=0\.2 HTTP/1\.1" 200 8 \(client went away\)$', line
        ), line


def test_a_stream_ended_by_a_graceful_stop_is_logged_as_such(serve) -> None:
    server = serve("prodapp", "--access-log=-")
    conn = server.connect()
    conn.send(request("GET", "/stream?n=100&i=0.2", host=server.address.netloc))
    assert conn.head().status == 200
    assert conn.read_chunk() == b"chunk 0\n"
    try:
        assert server.stop(timeout=10) == 0
    finally:
        conn.close()
    lines = _stream_lines(server)
    assert len(lines) == 1, server.stdout
    assert re.search(r'" 200 \d+ \(ended by a graceful stop\)$', lines[0]), lines


def _stream_lines(server: Server) -> list[str]:
    return [line for line in server.stdout_lines if "GET /stream" in line]


def test_bad_access_log_format_is_one_line() -> None:
    from support import run_evserver

    result = run_evserver(["prodapp", "--access-log-format", "%(nope)s"])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[0] == (
        "evserver: error: invalid --access-log-format: unknown access log atom %(nope)s"
    )


def test_a_second_sigint_stops_at_once(serve) -> None:
    server = serve("prodapp", "--graceful-timeout", "60")
    upload = server.connect()  # a request still arriving keeps the graceful stop waiting
    upload.send(request("POST", "/pid", body=b"0123456789", host=server.address.netloc)[:-5])
    time.sleep(0.2)
    server.proc.send_signal(signal.SIGINT)
    server.wait_for_output(r"SIGINT: stopping gracefully")
    time.sleep(0.3)
    assert server.proc.poll() is None  # still waiting for the upload
    assert server.stop(signal.SIGINT, timeout=5) == 0
    assert "SIGINT: stopping now" in server.stderr
    upload.close()


def test_workers_stop_when_the_master_disappears(serve) -> None:
    server = serve("prodapp", "-w", "2", "-s", "127.0.0.1:0")
    pids = [w["pid"] for w in status_json(server)["workers"]]
    server.proc.kill()  # SIGKILL: the master cannot tell anyone
    server.proc.wait()

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie waiting for its reaper (the test's init) has ended too.
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
        except FileNotFoundError:
            return True

    wait_until(lambda: all(gone(p) for p in pids), what="the workers to exit")


def test_the_worker_is_a_child_of_the_master(serve) -> None:
    server = serve("prodapp")
    assert get(server, "/pid").body == str(server.worker_pid).encode()


def test_sighup_under_evserver_bench_has_zero_errors(serve) -> None:
    """The issue's proof: `evserver bench` runs while the workers are replaced twice."""
    import subprocess

    from support import evserver_command, server_env

    server = serve("prodapp", "-w", "2")
    bench = subprocess.Popen(
        evserver_command("bench", "-c", "16", "-d", "4s", "--json", "-", server.url("/pid")),
        env=server_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)
    server.proc.send_signal(signal.SIGHUP)
    server.wait_for_output(r"reload done")
    time.sleep(0.8)
    server.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: server.stderr.count("reload done") == 2, what="the second reload")
    out, err = bench.communicate(timeout=30)
    assert bench.returncode == 0, err
    run = json.loads(out)["runs"][0]
    assert run["errors"]["total"] == 0, run["errors"]
    assert set(run["status"]) == {"200"}
    assert run["requests"] > 1000
