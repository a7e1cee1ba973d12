"""The command line: loading the app, listening, options and EVSERVER_* variables, the demo,
signals, logs, and one clear line for every way starting can fail."""

import json
import re
import shutil
import signal
import socket
import sys
import sysconfig
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from support import (
    ServerDidNotStart,
    exchange,
    request,
    run_evserver,
    start_server,
)

BACKEND_NAMES = {"io_uring": {"io_uring"}, "poll": {"epoll", "kqueue"}}


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("evserver: error:")]


def assert_one_clear_line(result, *fragments, status=1):
    """Exit status, exactly one error line naming ``fragments``, and no traceback."""
    assert result.returncode == status, result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return lines[0]


def hello(server, path="/"):
    return exchange(server, request("GET", path)).body


# --- the application: what loads and what fails ------------------------------------------------


def test_missing_module_is_one_clear_line():
    result = run_evserver(["nosuchmodule_xyz", "-l", "127.0.0.1:0"])
    line = assert_one_clear_line(result, "nosuchmodule_xyz")
    assert line == (
        "evserver: error: cannot import module 'nosuchmodule_xyz': "
        "No module named 'nosuchmodule_xyz'"
    )


def test_missing_callable_is_one_clear_line():
    result = run_evserver(["hello:nope", "-l", "127.0.0.1:0"])
    line = assert_one_clear_line(result)
    assert line == "evserver: error: module 'hello' has no attribute 'nope'"


def test_non_callable_is_one_clear_line():
    result = run_evserver(["hello:VALUE", "-l", "127.0.0.1:0"])
    line = assert_one_clear_line(result)
    assert line == "evserver: error: 'hello:VALUE' is not callable (it is an int)"


def test_invalid_application_name_is_one_clear_line():
    result = run_evserver(["hello:", "-l", "127.0.0.1:0"])
    assert_one_clear_line(result, "invalid application 'hello:'")


def test_module_failing_on_import_shows_its_traceback_then_one_line():
    result = run_evserver(["broken", "-l", "127.0.0.1:0"])
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert 'broken.py", line 3' in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        "evserver: error: error while importing module 'broken': RuntimeError: broken-on-purpose"
    )


def test_module_importing_a_missing_dependency_names_the_dependency():
    result = run_evserver(["needs_missing", "-l", "127.0.0.1:0"])
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("evserver: error: error while importing module 'needs_missing'")
    assert "evserver_test_no_such_dependency" in last


def test_exec_code_that_binds_no_application_is_one_clear_line():
    result = run_evserver(["--exec", "x = 1", "-l", "127.0.0.1:0"])
    line = assert_one_clear_line(result)
    assert line == "evserver: error: --exec code did not bind 'application'"


def test_framework_django_without_settings_is_one_clear_line():
    result = run_evserver(["--framework", "django", "-l", "127.0.0.1:0"])
    assert_one_clear_line(result, "--framework django needs DJANGO_SETTINGS_MODULE")


@pytest.mark.parametrize(
    ("spec", "body"),
    [
        ("hello", b"Hello, world!\n"),
        ("hello:application", b"Hello, world!\n"),
        ("hello:holder.app", b"other\n"),
        ("hello:make_app()", b"other\n"),
    ],
)
def test_app_names_that_load(serve, spec, body):
    assert hello(serve(spec)) == body


def test_exec_code_that_binds_application(serve):
    server = serve("--exec", "import hello\napplication = hello.other")
    assert hello(server) == b"other\n"


# --- how it starts: ready line, both commands ----------------------------------------------------


def test_ready_line_names_address_backend_workers_and_pid(serve, backend):
    server = serve("hello")
    assert server.backend in BACKEND_NAMES[backend]
    assert server.workers == 1
    assert server.pid == server.proc.pid
    assert len(server.addresses) == 1
    assert server.host == "127.0.0.1"
    assert server.port > 0
    assert hello(server) == b"Hello, world!\n"


def evserver_script():
    """The installed ``evserver`` command, or None."""
    script = Path(sysconfig.get_path("scripts")) / "evserver"
    return str(script) if script.exists() else shutil.which("evserver")


def test_the_evserver_command_works_too(backend):
    command = evserver_script()
    if command is None:
        pytest.skip("the evserver command is not installed (pip install .)")
    try:
        server = start_server(
            ["hello", "-l", "127.0.0.1:0", "--backend", backend], command=[command]
        )
    except ServerDidNotStart as e:
        if backend == "io_uring" and "io_uring" in e.stderr:
            pytest.skip(f"the kernel refuses io_uring here: {e.stderr.strip()}")
        raise
    try:
        assert hello(server) == b"Hello, world!\n"
    finally:
        assert server.stop() == 0


# --- listening ---------------------------------------------------------------------------------


def test_busy_port_is_one_clear_line():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_evserver(["hello", "-l", f"127.0.0.1:{port}"])
    line = assert_one_clear_line(result, f"cannot listen on 127.0.0.1:{port}")
    assert re.search(r"[Aa]ddress already in use", line), line


def test_port_of_a_running_evserver_is_busy(serve):
    first = serve("hello")
    result = run_evserver(["hello", "-l", f"127.0.0.1:{first.port}"])
    assert_one_clear_line(result, f"cannot listen on 127.0.0.1:{first.port}")
    assert hello(first) == b"Hello, world!\n"


def ipv6_available():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback here")
def test_listen_on_ipv6(serve):
    server = serve("hello", "-l", "[::1]:0")
    assert server.address.host == "::1"
    assert re.search(r"ready on http://\[::1\]:\d+ ", server.ready_line)
    assert hello(server) == b"Hello, world!\n"


def test_listen_on_a_unix_socket(serve, tmp_path):
    path = tmp_path / "ev.sock"
    server = serve("hello", "-l", f"unix:{path}")
    assert server.address.kind == "unix"
    assert server.address.path == str(path)
    assert f"ready on unix:{path} " in server.ready_line
    assert hello(server) == b"Hello, world!\n"


def test_listen_on_several_addresses(serve, tmp_path):
    args = ["hello", "-l", "127.0.0.1:0", "-l", f"unix:{tmp_path / 'ev.sock'}"]
    if ipv6_available():
        args += ["-l", "[::1]:0"]
    server = serve(*args)
    assert len(server.addresses) == len(args) // 2
    for address in server.addresses:
        with address.connect() as sock:
            sock.sendall(request("GET", "/"))
            data = b""
            while b"Hello, world!\n" not in data:
                chunk = sock.recv(4096)
                assert chunk, data
                data += chunk


def port_is_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_no_arguments_serve_the_demo_on_port_8080():
    if not port_is_free(8080):
        pytest.skip("port 8080 is in use on this machine")
    server = start_server([])
    try:
        assert "ready on http://127.0.0.1:8080 " in server.ready_line
        resp = exchange(server, request("GET", "/"))
        assert resp.status == 200
        assert b"EventSource" in resp.body
    finally:
        assert server.stop() == 0


# --- options and environment variables ---------------------------------------------------------


def test_bad_backend_value_is_a_usage_error():
    result = run_evserver(["hello", "--backend", "nope"])
    assert_one_clear_line(result, "nope", status=2)


def test_unknown_option_is_a_usage_error():
    result = run_evserver(["hello", "--no-such-option"])
    assert_one_clear_line(result, "--no-such-option", status=2)


@pytest.mark.parametrize(
    "args",
    [["--bogus"], ["x", "--exec", "y"], ["hello", "--framework", "demo"], ["-w", "0"]],
    ids=["unknown-option", "app-and-exec", "app-and-framework", "bad-worker-count"],
)
def test_every_clap_error_is_one_prefixed_line_and_the_usage_shows_app_optional(args):
    result = run_evserver(args)
    assert_one_clear_line(result, status=2)
    assert "Usage: evserver [APP] [OPTIONS]" in result.stderr
    assert "<APP>" not in result.stderr


@pytest.mark.parametrize(
    ("option", "value"),
    [("-l", "nonsense"), ("--listen", "127.0.0.1:99999"), ("--status", "nowhere")],
)
def test_a_bad_address_is_a_usage_error(option, value):
    result = run_evserver(["hello", option, value])
    assert_one_clear_line(result, value, status=2)


def test_help_lists_the_options():
    result = run_evserver(["--help"])
    assert result.returncode == 0
    for option in ("--listen", "--backend", "--exec", "--framework", "--log-level", "--access-log"):
        assert option in result.stdout, option


@pytest.mark.parametrize(
    ("name", "value"),
    [("EVSERVER_BACKEND", "nope"), ("EVSERVER_LOG_LEVEL", "loud")],
)
def test_bad_value_in_an_environment_variable_is_a_usage_error(name, value):
    result = run_evserver(["hello", "-l", "127.0.0.1:0"], env={name: value})
    assert_one_clear_line(result, value, status=2)


def test_listen_and_backend_from_environment_variables(serve, backend):
    server = serve(
        "hello", defaults=False, env={"EVSERVER_LISTEN": "127.0.0.1:0", "EVSERVER_BACKEND": backend}
    )
    assert server.host == "127.0.0.1"
    assert server.port != 8080
    assert server.backend in BACKEND_NAMES[backend]
    assert hello(server) == b"Hello, world!\n"


# --- demo --------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", [["--framework", "demo"], []], ids=["--framework-demo", "no-app"])
def test_demo_page(serve, how):
    server = serve(*how)
    resp = exchange(server, request("GET", "/"))
    assert resp.status == 200
    assert resp.header("Content-Type").startswith("text/html")
    page = resp.body.decode()
    assert page.startswith("<!doctype html>")
    assert 'new EventSource("clock")' in page
    assert 'id="chat"' in page
    assert "<script src" not in page and "<link" not in page, "no external resources"


def read_events(conn, count):
    """Reads ``count`` server-sent events from a chunked stream."""
    text = ""
    while text.count("\n\n") < count:
        chunk = conn.read_chunk()
        assert chunk is not None, f"the stream ended: {text!r}"
        text += chunk.decode()
    events = [block for block in text.split("\n\n") if block.strip()]
    return [
        json.loads(next(line[5:] for line in block.splitlines() if line.startswith("data:")))
        for block in events[:count]
    ]


def test_demo_clock_streams_a_tick_each_second(serve):
    server = serve()
    with server.connect() as conn:
        conn.send(request("GET", "/clock"))
        t0 = time.monotonic()
        head = conn.head()
        assert head.status == 200
        assert head.header("Content-Type").startswith("text/event-stream")
        first, second = read_events(conn, 2)
        elapsed = time.monotonic() - t0
    assert re.fullmatch(r"\d\d:\d\d:\d\d", first["time"])
    # The second tick comes when the second turns: one second later on the clock.
    step = datetime.fromisoformat(second["iso"]) - datetime.fromisoformat(first["iso"])
    assert step == timedelta(seconds=1)
    assert elapsed < 3
    assert hello(server, "/").startswith(b"<!doctype html>"), "the server goes on after"


def test_demo_text_clock_ends_after_count(serve):
    server = serve()
    resp = exchange(server, request("GET", "/clock.txt?count=2"))
    lines = resp.body.decode().splitlines()
    assert len(lines) == 2
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d( \S+)?", line) for line in lines)
    assert lines[0] != lines[1]


# --- signals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_the_server_with_status_0(serve, sig):
    server = serve("hello")
    assert hello(server) == b"Hello, world!\n"
    assert server.stop(sig) == 0
    assert "Traceback" not in server.stderr


def test_ctrl_c_stops_a_server_started_with_sigint_ignored(backend):
    """A server started from a background script inherits SIGINT ignored; evserver installs
    its own handling and does not depend on what it inherited."""
    ignoring = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "os.execv(sys.executable, [sys.executable, '-m', 'evserver', *sys.argv[1:]])"
    )
    server = start_server(
        ["hello", "-l", "127.0.0.1:0", "--backend", backend],
        command=[sys.executable, "-c", ignoring],
    )
    try:
        assert hello(server) == b"Hello, world!\n"
        assert server.stop(signal.SIGINT, timeout=10) == 0
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
    assert "SIGINT: stopping gracefully" in server.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_the_server_with_open_connections(serve, sig):
    server = serve()  # the demo: a clock stream stays parked between ticks
    idle = server.connect()
    idle.send(request("GET", "/"))
    idle.response()
    stream = server.connect()
    stream.send(request("GET", "/clock"))
    assert stream.head().status == 200
    try:
        assert server.stop(sig, timeout=10) == 0
    finally:
        idle.close()
        stream.close()


# --- logs --------------------------------------------------------------------------------------

CLF = re.compile(
    r"^127\.0\.0\.1 - - \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "
    r'"GET /hello\?x=1 HTTP/1\.1" 200 14$'
)


def test_access_log_to_stdout_in_common_log_format(serve):
    server = serve("hello", "--access-log=-")
    assert hello(server, "/hello?x=1") == b"Hello, world!\n"
    line = server.wait_for_output(r"GET /hello", stream="stdout")
    assert CLF.match(line), line


def test_access_log_from_the_environment(serve):
    server = serve("hello", env={"EVSERVER_ACCESS_LOG": "-"})
    hello(server, "/hello?x=1")
    assert CLF.match(server.wait_for_output(r"GET /hello", stream="stdout"))


def test_access_log_to_a_file_appends(serve, tmp_path):
    log = tmp_path / "access.log"
    log.write_text("an earlier line\n")
    server = serve("hello", f"--access-log={log}")
    hello(server, "/hello?x=1")
    deadline = time.monotonic() + 5
    while log.read_text().count("\n") < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    lines = log.read_text().splitlines()
    assert lines[0] == "an earlier line"
    assert CLF.match(lines[1]), lines


def test_access_log_is_off_by_default(serve):
    server = serve("hello")
    for _ in range(3):
        hello(server, "/hello?x=1")
    assert server.stop() == 0
    assert server.stdout == ""
    assert "GET /hello" not in server.stderr


def test_log_level_info_is_the_default(serve):
    server = serve("hello")
    hello(server, "/log")
    line = server.wait_for_output("info-marker from the app")
    assert "INFO" in line
    assert re.search(r"\d\d:\d\d:\d\d", line), "log lines carry the time"


@pytest.mark.parametrize("how", ["option", "environment"])
def test_log_level_warning_hides_info(serve, how):
    if how == "option":
        server = serve("hello", "--log-level", "warning")
    else:
        server = serve("hello", env={"EVSERVER_LOG_LEVEL": "warning"})
    hello(server, "/log")
    server.wait_for_output("warning-marker from the app")
    assert "info-marker" not in server.stderr


# --- io_uring refused --------------------------------------------------------------------------


def test_auto_backend_falls_back_to_epoll_and_says_why():
    server = start_server(
        ["hello", "-l", "127.0.0.1:0", "--backend", "auto"],
        env={"EVSERVER_SIMULATE_IO_URING_REFUSAL": "EPERM"},
    )
    try:
        assert server.backend == "epoll"
        ready_at = server.stderr_lines.index(server.ready_line)
        reasons = [
            line for line in server.stderr_lines[:ready_at] if line.endswith("; using epoll")
        ]
        assert len(reasons) == 1, server.stderr
        assert reasons[0].startswith("evserver: ")
        assert "io_uring" in reasons[0]
        assert hello(server) == b"Hello, world!\n"
    finally:
        assert server.stop() == 0


def test_forced_io_uring_when_refused_is_one_clear_line():
    result = run_evserver(
        ["hello", "-l", "127.0.0.1:0", "--backend", "io_uring"],
        env={"EVSERVER_SIMULATE_IO_URING_REFUSAL": "EPERM"},
    )
    assert_one_clear_line(result, "io_uring")


# --- the working directory ---------------------------------------------------------------------


def test_apps_in_the_working_directory_are_found(tmp_path):
    (tmp_path / "cwd_app_xyz.py").write_text(
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'from the working directory']\n"
    )
    # The installed command, where there is one: `python -m` would add the directory itself.
    command = [evserver_script()] if evserver_script() else None
    server = start_server(
        ["cwd_app_xyz", "-l", "127.0.0.1:0", "--backend", "poll"], cwd=tmp_path, command=command
    )
    try:
        assert hello(server) == b"from the working directory"
    finally:
        assert server.stop() == 0


# --- limits and timeouts from the command line -------------------------------------------------


def test_max_body_option(serve):
    server = serve("httpapp:application", "--max-body", "100")
    assert exchange(server, request("POST", "/echo", body=b"x" * 100)).body == b"x" * 100
    resp = exchange(server, request("POST", "/echo", body=b"x" * 101))
    assert resp.status == 413
    chunked_body = b"64\r\n" + b"x" * 100 + b"\r\n1\r\nx\r\n0\r\n\r\n"
    raw = request("POST", "/echo", headers=[("Transfer-Encoding", "chunked")], body=chunked_body)
    assert exchange(server, raw).status == 413


def test_header_timeout_cuts_off_a_slow_client(serve):
    server = serve("hello", "--header-timeout", "1")
    with server.connect() as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: t\r\n")  # and never the end of the head
        t0 = time.monotonic()
        rest = conn.read_to_eof()
        elapsed = time.monotonic() - t0
    assert 0.5 <= elapsed < 5
    assert rest == b"" or rest.startswith(b"HTTP/1.1 408 ")
    assert hello(server) == b"Hello, world!\n"


def test_keep_alive_option_closes_idle_connections(serve):
    server = serve("hello", "--keep-alive", "1")
    with server.connect() as conn:
        conn.send(request("GET", "/"))
        assert conn.response().body == b"Hello, world!\n"
        t0 = time.monotonic()
        assert conn.is_closed(timeout=5)
        assert 0.5 <= time.monotonic() - t0 < 5
