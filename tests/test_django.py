"""Django under evserver: ``manage.py runevserver``, ``--framework django`` and
``myproject.wsgi:application`` serving the example project (examples/django_project), streaming
views that wait with fdevent, and ``evserver.django``'s GZip middleware.

Each test runs on a copy of the project in a temporary directory with its own SQLite file.
"""

from __future__ import annotations

import gzip
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from support import (
    RawConnection,
    Server,
    ServerDidNotStart,
    request,
    server_env,
)

pytest.importorskip("django")

REPO = Path(__file__).resolve().parent.parent
PROJECT = REPO / "examples" / "django_project"


# --- the project and its servers ----------------------------------------------------------------


def copy_project(dest: Path, migrate: bool = True) -> Path:
    """A copy of the example project in ``dest``, its database migrated unless told not to."""
    shutil.copytree(
        PROJECT, dest, ignore=shutil.ignore_patterns("__pycache__", "db.sqlite3", "*.pyc")
    )
    if migrate:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
            cwd=dest,
            env=project_env(dest),
            check=True,
            timeout=60,
        )
    return dest


def project_env(project: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = server_env({"EXAMPLE_DB": str(project / "db.sqlite3"), "DJANGO_COLORS": "nocolor"})
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(extra or {})
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def skip_if_io_uring_refused(backend: str, error: ServerDidNotStart) -> None:
    if backend == "io_uring" and error.returncode and "io_uring" in error.stderr:
        pytest.skip(f"the kernel refuses io_uring here: {error.stderr.strip().splitlines()[-1]}")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated copy shared by the tests that do not change the project."""
    return copy_project(tmp_path_factory.mktemp("django") / "project")


@pytest.fixture
def runevserver(backend: str) -> Iterator[Callable[..., Server]]:
    """Starts ``manage.py runevserver ARGS --backend B`` in its own process group (so that the
    reloader's parent and child both get the Ctrl-C) and stops what is left after the test."""
    started: list[Server] = []

    def start(project: Path, *args: str, env: dict[str, str] | None = None) -> Server:
        argv = [sys.executable, "manage.py", "runevserver", *args, "--backend", backend]
        proc = subprocess.Popen(
            argv,
            cwd=project,
            env=project_env(project, env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        server = Server(proc, argv)
        started.append(server)
        server._collect()
        try:
            server.wait_ready()
        except ServerDidNotStart as e:
            skip_if_io_uring_refused(backend, e)
            raise
        return server

    yield start
    for server in started:
        _kill_group(server.proc)
        server.join_output()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def ctrl_c(server: Server, timeout: float = 10.0) -> int:
    """Sends SIGINT to the whole process group, as a terminal's Ctrl-C does; returns the exit
    status once every process of the group is gone."""
    os.killpg(server.proc.pid, signal.SIGINT)
    status = server.proc.wait(timeout)
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(server.proc.pid, 0)
        except ProcessLookupError:
            break
        if time.monotonic() > deadline:
            raise AssertionError("a process of the group outlived Ctrl-C")
        time.sleep(0.05)
    server.join_output()
    return status


def get(server: Server, path: str, headers: list[tuple[str, str]] | None = None):
    with server.connect() as conn:
        conn.send(request("GET", path, headers, host=server.address.netloc))
        return conn.response()


def clock_lines(conn: RawConnection, count: int, gzipped: bool = False) -> list[datetime]:
    """Reads ``count`` lines of a clock response (after its head) as times."""
    text = b""
    inflate = zlib.decompressobj(wbits=31) if gzipped else None
    while text.count(b"\n") < count:
        chunk = conn.read_chunk()
        assert chunk is not None, f"the clock ended after {text!r}"
        text += inflate.decompress(chunk) if inflate else chunk
    return [datetime.fromisoformat(line) for line in text.decode().splitlines()[:count]]


def assert_ticks(times: list[datetime]) -> None:
    """The clock waited about its second between lines (the waits reached the server)."""
    for earlier, later in itertools.pairwise(times):
        assert (later - earlier).total_seconds() >= 0.9, times


def stream_clock(server: Server, path: str, gzipped: bool = False, count: int = 3) -> None:
    headers = [("Accept-Encoding", "gzip")] if gzipped else []
    with server.connect() as conn:
        conn.send(request("GET", path, headers, host=server.address.netloc))
        head = conn.head()
        assert head.status == 200, head
        assert head.header("Content-Type") == "text/plain"
        assert head.header("Content-Encoding") == ("gzip" if gzipped else None)
        assert_ticks(clock_lines(conn, count, gzipped))


# --- runevserver --------------------------------------------------------------------------------


def test_access_lines_go_only_to_a_handler_the_project_configured(
    runevserver, tmp_path: Path
) -> None:
    """A LOGGING with a handler on evserver.access gets the access lines, and runevserver's
    default access log (stdout) does not print them a second time."""
    project = copy_project(tmp_path / "project")
    access_file = tmp_path / "access.log"
    with (project / "mysite" / "settings.py").open("a") as settings:
        settings.write(
            "\nLOGGING = {'version': 1, 'disable_existing_loggers': False,\n"
            "    'handlers': {'access': {'class': 'logging.FileHandler',\n"
            f"        'filename': {str(access_file)!r}}}}},\n"
            "    'loggers': {'evserver.access': {'handlers': ['access'],\n"
            "        'level': 'INFO', 'propagate': False}}}\n"
        )
    server = runevserver(project, "--noreload", "--nostatic", str(free_port()))
    with server.connect() as conn:
        conn.send(request("GET", "/notes/", host=server.address.netloc))
        assert conn.response().status == 200
    deadline = time.monotonic() + 5
    while "GET /notes/" not in _read(access_file) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _read(access_file).count("GET /notes/") == 1
    time.sleep(0.2)  # a second copy on stdout would be there by now
    assert "GET /notes/" not in server.stdout


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_runevserver_serves_with_django_banner_and_stops_on_ctrl_c(
    runevserver, project: Path, backend: str
) -> None:
    port = free_port()
    server = runevserver(project, f"127.0.0.1:{port}")
    assert server.backend == backend or (backend, server.backend) in (
        ("poll", "epoll"),
        ("poll", "kqueue"),
    )
    assert server.addresses[0].port == port
    stream_clock(server, "/clock/", count=2)
    out = server.stdout
    assert "Performing system checks..." in out
    assert "System check identified no issues (0 silenced)." in out
    assert "Django version " in out
    assert "using settings 'mysite.settings'" in out
    assert f"Starting development server at http://127.0.0.1:{port}/" in out
    assert "Quit the server with CONTROL-C." in out
    assert "Watching for file changes with StatReloader" in server.stderr
    # A line per request on stdout, as runserver prints.
    assert get(server, "/").status == 200
    server.wait_for_output(r'"GET / HTTP/1\.1" 200 ', stream="stdout")
    assert ctrl_c(server) == 0
    assert "Traceback" not in server.stderr


def _os_threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("Threads:"))


@pytest.mark.parametrize(
    ("args", "threaded"),
    [((), True), (("--threads", "3"), True), (("--nothreading",), False)],
    ids=["default", "threads-3", "nothreading"],
)
def test_runevserver_is_threaded_unless_nothreading(
    runevserver, project: Path, args: tuple[str, ...], threaded: bool
) -> None:
    """As runserver: views run on threads (a pool of 8 by default, --threads N), or on the
    worker's event loop with --nothreading."""
    server = runevserver(project, "--noreload", *args, str(free_port()))
    assert get(server, "/notes/").status == 200
    threads = _os_threads(server.worker_pid)
    if not threaded:
        assert threads <= 3, threads
    else:
        pool = int(args[1]) if args else 8
        assert pool < threads <= pool + 4, threads
    assert ctrl_c(server) == 0


def test_noreload_runs_one_process_and_stops_on_ctrl_c(
    runevserver, project: Path, backend: str
) -> None:
    server = runevserver(project, "--noreload", str(free_port()))
    assert server.pid == server.proc.pid  # no reloader parent: the server is the command
    assert get(server, "/static/live/live.css").status == 200
    assert "Watching for file changes" not in server.stderr
    server.wait_for_output(r'"GET /static/live/live.css HTTP/1\.1" 200 ', stream="stdout")
    # Let the server finish the response (it calls close() after the last byte is sent): a
    # Ctrl-C that lands while application code runs is raised there as KeyboardInterrupt.
    time.sleep(0.5)
    assert ctrl_c(server) == 0
    assert "Traceback" not in server.stderr


def test_reloader_restarts_on_code_change(runevserver, tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    server = runevserver(project, str(free_port()))
    assert get(server, "/reloaded/").status == 404
    urls = project / "mysite" / "urls.py"
    urls.write_text(
        urls.read_text()
        + "\nfrom django.http import HttpResponse  # noqa: E402\n\n"
        + 'urlpatterns.append(path("reloaded/", lambda request: HttpResponse("new code")))\n'
    )
    # The reloader notices a change against the first look it took at the file, which may come
    # after the write: touch the file again until it notices.
    deadline = time.monotonic() + 20
    while not any("urls.py changed, reloading" in line for line in server.stderr_lines):
        assert time.monotonic() < deadline, f"no reload:\n{server.stderr}"
        time.sleep(0.5)
        os.utime(urls)
    deadline = time.monotonic() + 20
    while True:
        try:
            resp = get(server, "/reloaded/")
            if resp.status == 200:
                break
        except OSError:
            pass  # between the old child and the new one
        assert time.monotonic() < deadline, "the new code was not served"
        time.sleep(0.1)
    assert resp.body == b"new code"
    pids = re.findall(r"^evserver: ready on .* pid (\d+)\)$", server.stderr, re.MULTILINE)
    assert len(set(pids)) == 2, server.stderr
    assert ctrl_c(server) == 0


@pytest.mark.parametrize(
    ("args", "debug", "served"),
    [
        ((), "1", True),
        (("--nostatic",), "1", False),
        ((), "0", False),
        (("--insecure",), "0", True),
    ],
    ids=["debug", "nostatic", "no-debug", "insecure"],
)
def test_static_files_as_runserver_serves_them(
    runevserver, project: Path, args: tuple[str, ...], debug: str, served: bool
) -> None:
    server = runevserver(
        project, "--noreload", "--noaccesslog", *args, str(free_port()), env={"DJANGO_DEBUG": debug}
    )
    resp = get(server, "/static/live/live.css")
    if served:
        assert resp.status == 200, resp
        assert resp.body == (PROJECT / "live" / "static" / "live" / "live.css").read_bytes()
        assert resp.header("Content-Type") == "text/css"
    else:
        assert resp.status == 404, resp
    # The project itself is served either way.
    with server.connect() as conn:
        conn.send(request("GET", "/clock/", host=server.address.netloc))
        assert conn.head().status == 200
    assert "GET /static/" not in server.stdout  # --noaccesslog


def test_address_forms(runevserver, project: Path) -> None:
    port = free_port()
    server = runevserver(project, "--noreload", f"0:{port}")
    assert server.ready_line.startswith(f"evserver: ready on http://0.0.0.0:{port} ")
    assert f"Starting development server at http://0.0.0.0:{port}/" in server.stdout
    assert ctrl_c(server) == 0

    port = free_port()
    server = runevserver(project, "--noreload", f"localhost:{port}")
    assert server.addresses[0].port == port
    assert f"Starting development server at http://localhost:{port}/" in server.stdout
    assert ctrl_c(server) == 0

    if not _ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    port = free_port()
    server = runevserver(project, "--noreload", "-6", str(port))
    assert server.ready_line.startswith(f"evserver: ready on http://[::1]:{port} ")
    assert f"Starting development server at http://[::1]:{port}/" in server.stdout
    assert ctrl_c(server) == 0


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_default_address_is_django_s(runevserver, project: Path) -> None:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", 8000))
        except OSError:
            pytest.skip("port 8000 is in use here")
    server = runevserver(project, "--noreload")
    assert server.ready_line.startswith("evserver: ready on http://127.0.0.1:8000 ")
    assert "Starting development server at http://127.0.0.1:8000/" in server.stdout
    assert ctrl_c(server) == 0


def test_unapplied_migrations_warning(runevserver, tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project", migrate=False)
    server = runevserver(project, "--noreload", str(free_port()))
    assert re.search(r"You have \d+ unapplied migration\(s\)\.", server.stdout), server.stdout
    assert "contenttypes, live" in server.stdout
    assert "Run 'python manage.py migrate' to apply them." in server.stdout


@pytest.mark.parametrize("how", ["runevserver", "--framework django", "mysite.wsgi"])
def test_django_s_own_gzip_middleware_passes_the_waits(
    runevserver, serve, project: Path, how: str
) -> None:
    """With Django's stock GZipMiddleware (evserver makes it pass the empty chunks)."""
    (project / "mysite" / "settings_stock_gzip.py").write_text(
        "from mysite.settings import *  # noqa: F403\n\n"
        "MIDDLEWARE = [m.replace('evserver.django.', 'django.middleware.gzip.') "
        "for m in MIDDLEWARE]  # noqa: F405\n"
        "assert 'django.middleware.gzip.GZipMiddleware' in MIDDLEWARE\n"
    )
    settings = "mysite.settings_stock_gzip"
    if how == "runevserver":
        server = runevserver(project, "--noreload", str(free_port()), "--settings", settings)
    else:
        args = ["--framework", "django"] if how.startswith("--") else ["mysite.wsgi:application"]
        env = project_env(project, {"DJANGO_SETTINGS_MODULE": settings})
        server = serve(*args, env=env, cwd=project)
    for path in ("/clock/", "/clock/seed/"):
        stream_clock(server, path, gzipped=True, count=2)


def run_manage(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=project,
        env=project_env(project),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (
            ["not:an:address"],
            1,
            'CommandError: "not:an:address" is not a valid port number or address:port pair.',
        ),
        (["--workers", "2"], 1, "CommandError: --workers above 1 needs --noreload"),
        (["--workers", "auto"], 1, "CommandError: --workers above 1 needs --noreload"),
        (["--workers", "zero"], 2, "'zero' is not a positive number of workers or 'auto'"),
        (["--backend", "select"], 2, "invalid choice: 'select'"),
    ],
)
def test_bad_command_lines_get_one_clear_line(
    project: Path, args: list[str], status: int, message: str
) -> None:
    result = run_manage(project, "runevserver", *args)
    assert result.returncode == status, result
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_busy_port_is_one_clear_line(project: Path, backend: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        for reload in ([], ["--noreload"]):
            result = run_manage(project, "runevserver", *reload, str(port), "--backend", backend)
            assert result.returncode == 1, result
            assert f"evserver: error: cannot listen on 127.0.0.1:{port}" in result.stderr
            assert "Traceback" not in result.stderr


def _evserver_has_workers() -> bool:
    help_text = subprocess.run(
        [sys.executable, "-m", "evserver", "--help"], capture_output=True, text=True, check=False
    ).stdout
    return "--workers" in help_text


def test_workers_are_passed_to_evserver(runevserver, project: Path) -> None:
    if not _evserver_has_workers():
        pytest.skip("this evserver has no --workers option yet")
    server = runevserver(project, "--noreload", "--workers", "2", str(free_port()))
    assert server.workers == 2
    stream_clock(server, "/clock/", count=2)
    assert ctrl_c(server) == 0


# --- the other ways to serve the project ------------------------------------------------------


@pytest.mark.parametrize(
    "how", ["framework", "wsgi"], ids=["--framework django", "mysite.wsgi:application"]
)
def test_evserver_command_serves_the_project(serve, project: Path, how: str) -> None:
    args = ["--framework", "django"] if how == "framework" else ["mysite.wsgi:application"]
    env = project_env(project, {"DJANGO_SETTINGS_MODULE": "mysite.settings"})
    server = serve(*args, env=env, cwd=project)
    stream_clock(server, "/clock/", count=2)
    stream_clock(server, "/clock/seed/", gzipped=True, count=2)
    resp = get(server, "/")
    assert resp.status == 200 and b"<h1>evserver + Django</h1>" in resp.body
    # Static files are runevserver's development service, not the WSGI application's.
    assert get(server, "/static/live/live.css").status == 404


# --- streaming through the middleware stack -----------------------------------------------------


def test_streaming_views_wait_through_gzip_middleware(runevserver, project: Path) -> None:
    server = runevserver(project, "--noreload", str(free_port()))
    for path in ("/clock/", "/clock/seed/"):
        stream_clock(server, path)
        stream_clock(server, path, gzipped=True)


def test_compress_stream_flushes_and_passes_empty_chunks() -> None:
    from evserver.django import compress_stream

    out = list(compress_stream([b"one\n", b"two\n", b"", b"three\n", b"", b""]))
    # What was made before each wait is complete once the wait's empty chunk comes.
    waits = [i for i, chunk in enumerate(out) if chunk == b""]
    assert len(waits) == 3
    inflate = zlib.decompressobj(wbits=31)
    assert inflate.decompress(b"".join(out[: waits[0]])) == b"one\ntwo\n"
    assert inflate.decompress(b"".join(out[waits[0] : waits[1]])) == b"three\n"
    assert gzip.decompress(b"".join(out)) == b"one\ntwo\nthree\n"
    # Without waits, nothing is flushed early: one compressed stream as Django makes it.
    big = [b"%d," % i for i in range(2000)]
    out = [chunk for chunk in compress_stream(big) if chunk]
    assert len(out) <= 2
    assert gzip.decompress(b"".join(out)) == b"".join(big)


# --- the chat and the live notes (broadcast channels, SSE) --------------------------------------


class EventStream:
    """A client of a server-sent events stream on a raw connection, gzipped if asked."""

    def __init__(self, server: Server, path: str, gzipped: bool = False) -> None:
        self.conn = server.connect()
        headers = [("Accept", "text/event-stream")]
        if gzipped:
            headers.append(("Accept-Encoding", "gzip"))
        self.conn.send(request("GET", path, headers, host=server.address.netloc))
        head = self.conn.head()
        assert head.status == 200, head
        assert head.header("Content-Type") == "text/event-stream; charset=utf-8"
        assert head.header("Content-Encoding") == ("gzip" if gzipped else None)
        self.inflate = zlib.decompressobj(wbits=31) if gzipped else None
        self.text = ""

    def wait_for(self, *needles: str) -> str:
        """Reads until the stream holds every needle after what earlier calls consumed."""
        while not all(n in self.text for n in needles):
            chunk = self.conn.read_chunk()
            assert chunk is not None, f"the stream ended: {self.text!r}"
            data = self.inflate.decompress(chunk) if self.inflate else chunk
            self.text += data.decode()
        text, self.text = self.text, ""
        return text

    def close(self) -> None:
        self.conn.close()


class Browser:
    """Posts forms the way a browser does: CSRF cookie and token from the page first."""

    def __init__(self, server: Server) -> None:
        import requests

        self.base = server.url("")
        self.session = requests.Session()

    def post_form(self, page: str, action: str, **data: str):
        html = self.session.get(self.base + page, timeout=10).text
        m = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
        assert m, html
        return self.session.post(
            self.base + action, data={"csrfmiddlewaretoken": m.group(1), **data}, timeout=10
        )


def test_model_save_pushes_to_connected_clients(runevserver, tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    server = runevserver(project, str(free_port()))
    clients = [EventStream(server, "/notes/events", gzipped=g) for g in (False, True)]
    for client in clients:
        client.wait_for(":\n\n")  # the stream is open: the first comment came
    browser = Browser(server)
    resp = browser.post_form("/notes/", "/notes/", text="first note")
    assert resp.status_code == 200 and resp.url.endswith("/notes/")  # redirected to the page
    for client in clients:
        got = client.wait_for('"text": "first note"')
        assert "id: 1\nevent: created\n" in got
        assert 'data: {"id": 1, "text": "first note", "updated": ' in got
    assert '<li id="note-1">first note</li>' in browser.session.get(server.url("/notes/")).text

    browser.post_form("/notes/", "/notes/1/", text="first note, edited")
    for client in clients:
        got = client.wait_for('"text": "first note, edited"')
        assert "id: 2\nevent: updated\n" in got
    browser.post_form("/notes/", "/notes/1/", delete="1")
    for client in clients:
        assert 'id: 3\nevent: deleted\ndata: {"id": 1}\n' in client.wait_for("event: deleted")

    # A client that reconnects with Last-Event-ID gets what it missed.
    late = EventStream(server, "/notes/events?lastEventId=1")
    got = late.wait_for("event: deleted")
    assert "id: 2\nevent: updated\n" in got and "id: 1\n" not in got
    for client in [*clients, late]:
        client.close()


def test_chat_reaches_every_client(runevserver, project: Path) -> None:
    server = runevserver(project, "--noreload", str(free_port()))
    clients = [EventStream(server, "/chat/events", gzipped=g) for g in (False, True)]
    for client in clients:
        client.wait_for(":\n\n")
    browser = Browser(server)
    resp = browser.post_form("/chat/", "/chat/say", name="ann", text="hello, all")
    assert resp.status_code == 200, resp.text
    message_id = resp.json()["id"]
    for client in clients:
        got = client.wait_for("hello, all")
        assert (
            f'id: {message_id}\nevent: said\ndata: {{"name": "ann", "text": "hello, all"}}\n'
            in (got)
        )
    resp = browser.post_form("/chat/", "/chat/say", name="ann", text="  ")
    assert resp.status_code == 400
    assert resp.json() == {"error": "say something"}
    for client in clients:
        client.close()


def test_example_migrations_match_its_models(project: Path) -> None:
    result = run_manage(project, "makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


def test_importing_evserver_stays_light() -> None:
    code = "import sys, evserver; print(sorted(m for m in sys.modules if m.startswith('django')))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_seed_style_http_response_streams_iterators_only() -> None:
    # In a child process: it configures Django's settings, which are global.
    code = """
from django.conf import settings
settings.configure()
from django.http import HttpResponse as Plain, StreamingHttpResponse
from evserver.django import HttpResponse
streamed = HttpResponse(iter(["a", "", "b"]), mimetype="text/plain")
assert type(streamed) is StreamingHttpResponse, type(streamed)
assert streamed["Content-Type"] == "text/plain"
assert list(streamed) == [b"a", b"", b"b"]  # the empty chunk (a wait) is kept
for content in ("text", b"bytes", 42):
    plain = HttpResponse(content, content_type="text/html", status=201)
    assert type(plain) is Plain and plain.status_code == 201, (content, type(plain))
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.stdout.strip() == "ok", result.stderr
