"""Coming from gunicorn: its flags, its Python config file, and the process options it has
(--chdir, -e, --pythonpath, --preload, -u/-g, -m, --error-logfile, --log-config), on a real
server over real sockets (both backends where a request is served)."""

import grp
import json
import os
import pwd
import shutil
import stat
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from support import APPS, request, run_evserver


def get_json(server, path="/"):
    with server.connect() as conn:
        conn.send(request("GET", path, host=server.address.netloc))
        response = conn.response()
    assert response.status == 200, response
    return json.loads(response.body)


def error_line(result):
    lines = [x for x in result.stderr.splitlines() if x.startswith("evserver: error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return lines[0]


# --- gunicorn's command line --------------------------------------------------------------------


def test_a_gunicorn_command_line_runs_as_it_is(serve, backend):
    server = serve(
        "-w", "2", "-b", "127.0.0.1:0", "-t", "60", "--access-logfile", "-",
        "--log-level", "DEBUG", "--graceful-timeout", "5", "--max-requests", "1000",
        "--max-requests-jitter", "50", "--keep-alive", "5", "-k", "gthread",
        "--worker-connections", "500", "--backend", backend, "deployapp:application",
        defaults=False,
    )  # fmt: skip
    assert server.workers == 2
    seen = get_json(server)
    assert seen["environ"]["wsgi.url_scheme"] == "http"
    server.wait_for_output(r'"GET / HTTP/1.1" 200', stream="stdout")


@pytest.mark.parametrize(
    "flag, fragment",
    [
        (["--daemon"], "--daemon"),
        (["-D"], "-D"),
        (["--statsd-host=localhost:8125"], "--statsd-host"),
        (["--worker-tmp-dir", "/dev/shm"], "--worker-tmp-dir"),
        (["--paste", "x.ini"], "--paste"),
        (["--ciphers", "ECDHE+AESGCM"], "--ciphers"),
    ],
)
def test_a_gunicorn_flag_evserver_lacks_is_one_line_naming_it(flag, fragment):
    result = run_evserver([*flag, "hello"])
    assert result.returncode == 2
    line = error_line(result)
    assert f"gunicorn's {fragment} is not supported by evserver" in line


def test_a_worker_class_other_than_sync_or_gthread_is_refused():
    result = run_evserver(["-k", "gevent", "hello"])
    assert result.returncode == 2
    assert "'gevent' worker is not available" in error_line(result)


def test_log_level_takes_any_case_and_critical(serve):
    server = serve("hello", "--log-level", "CRITICAL")
    with server.connect() as conn:
        conn.send(request("GET", "/log", host=server.address.netloc))
        assert conn.response().status == 200
    time.sleep(0.2)
    assert "warning-marker" not in server.stderr


def test_an_unknown_flag_that_is_not_gunicorns_keeps_clap_s_answer():
    result = run_evserver(["--no-such-flag", "hello"])
    assert result.returncode == 2
    assert "unexpected argument '--no-such-flag'" in error_line(result)


# --- the config file ---------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def test_a_gunicorn_config_file_sets_the_server_up(serve, tmp_path, backend):
    config = write(
        tmp_path / "gunicorn.conf.py",
        f"""
        import multiprocessing

        _cores = multiprocessing.cpu_count()
        bind = ["127.0.0.1:0"]
        workers = 2
        threads = 3
        timeout = 60
        accesslog = "-"
        loglevel = "warning"
        raw_env = ["DEPLOY_MARK=from-config"]
        wsgi_app = "deployapp:application"
        backend = "{backend}"
        preload_app = False
        daemon = False

        def helper():
            return 1
        """,
    )
    server = serve("-c", str(config), defaults=False, env={"EVSERVER_WORKERS": "4"})
    # The file wins over EVSERVER_*.
    assert server.workers == 2
    assert f"backend {'io_uring' if backend == 'io_uring' else 'epoll'}" in server.ready_line
    assert get_json(server)["env"] == "from-config"
    server.wait_for_output(r'"GET / HTTP/1.1" 200', stream="stdout")


def test_the_command_line_wins_over_the_config_file(serve, tmp_path):
    config = write(
        tmp_path / "conf.py",
        """
        bind = "127.0.0.1:1"
        workers = 3
        wsgi_app = "no_such_module:application"
        """,
    )
    server = serve("-c", str(config), "-w", "1", "deployapp")
    assert server.workers == 1
    assert server.port != 1
    assert get_json(server)["pid"] == server.worker_pid


def test_gunicorn_conf_py_in_the_directory_is_read_without_c(serve, tmp_path):
    write(tmp_path / "gunicorn.conf.py", "raw_env = ['DEPLOY_MARK=default-file']\n")
    server = serve("deployapp", "--pythonpath", str(APPS), cwd=tmp_path)
    assert get_json(server)["env"] == "default-file"
    server.wait_for_output(r"settings read from gunicorn\.conf\.py")


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("workerz = 2\n", "unknown setting 'workerz'"),
        ("def post_fork(server, worker):\n    pass\n", "server hook 'post_fork'"),
        ("statsd_host = 'localhost:8125'\n", "'statsd_host' is not supported"),
        ("workers = (\n", "line 1"),
        ("raise RuntimeError('boom')\n", "raised RuntimeError: boom"),
        ("workers = 'many'\n", "invalid value 'many'"),
        ("preload_app = 'yes'\n", "must be True or False"),
    ],
)
def test_a_bad_config_file_is_one_line(tmp_path, text, fragment):
    config = write(tmp_path / "bad.conf.py", text)
    result = run_evserver(["-c", str(config), "hello"])
    assert result.returncode == 2
    line = error_line(result)
    assert fragment in line
    assert "bad.conf.py" in line


def test_a_missing_config_file_is_one_line(tmp_path):
    result = run_evserver(["-c", str(tmp_path / "nope.py"), "hello"])
    assert result.returncode == 2
    assert "does not exist" in error_line(result)


# --- the process: directory, environment, module path, preload ---------------------------------


def test_chdir_env_and_pythonpath_reach_the_application(serve, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "elsewhere.py").write_text("from deployapp import application\n")
    server = serve(
        "--chdir", str(tmp_path), "-e", "DEPLOY_MARK=a=b", "--pythonpath",
        f"{lib},{APPS}", "elsewhere",
    )  # fmt: skip
    seen = get_json(server)
    assert seen["cwd"] == str(tmp_path)
    assert seen["env"] == "a=b"
    # The directory is searched first (as without --pythonpath), then --pythonpath's.
    assert seen["path0"] == [str(tmp_path), str(lib), str(APPS)]


def test_preload_imports_the_application_once_in_the_master(serve):
    server = serve("deployapp", "--preload", "-w", "2")
    for _ in range(4):
        seen = get_json(server)
        assert seen["imported_in"] == server.pid
        assert seen["pid"] in server.worker_pids()


def test_without_preload_each_worker_imports_the_application(serve):
    server = serve("deployapp")
    seen = get_json(server)
    assert seen["imported_in"] == seen["pid"] == server.worker_pid


def test_preload_and_reload_are_refused_together():
    result = run_evserver(["hello", "--preload", "--reload"])
    assert result.returncode == 2
    assert "--preload and --reload" in error_line(result)


def test_a_broken_application_with_preload_fails_in_the_master():
    result = run_evserver(["broken", "--preload", "-w", "2"])
    assert result.returncode == 1
    assert "evserver: ready" not in result.stderr
    # The user's bug is shown with its traceback, once (by the master, not by each worker).
    assert result.stderr.count("Traceback") == 1, result.stderr
    assert "error while importing module 'broken'" in result.stderr


# --- user, group, umask --------------------------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


# Only modules the master imported already (os): the interpreter may live where user nobody
# cannot read (pyenv under /root on the test machines), as long as the app's file can be read.
NOBODY_APP = """
import os

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{os.getuid()} {os.getgid()}".encode()]
"""


@pytest.fixture
def world_readable_dir():
    path = Path(tempfile.mkdtemp(prefix="evserver-user-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@needs_root
def test_user_and_group_are_switched_after_binding(serve, world_readable_dir):
    nobody = pwd.getpwnam("nobody")
    (world_readable_dir / "nobodyapp.py").write_text(NOBODY_APP)
    sock = world_readable_dir / "app.sock"
    server = serve(
        "nobodyapp", "--chdir", str(world_readable_dir), "-u", "nobody", "-g",
        str(nobody.pw_gid), "-b", "127.0.0.1:0", "-b", f"unix:{sock}",
    )  # fmt: skip
    with server.connect() as conn:
        conn.send(request("GET", "/", host=server.address.netloc))
        assert conn.response().body == f"{nobody.pw_uid} {nobody.pw_gid}".encode()
    for pid in (server.pid, server.worker_pid):
        status = Path(f"/proc/{pid}/status").read_text()
        assert f"Uid:\t{nobody.pw_uid}\t{nobody.pw_uid}\t{nobody.pw_uid}" in status
    assert sock.stat().st_uid == nobody.pw_uid


@needs_root
def test_group_is_switched_and_supplementary_groups_dropped(serve, tmp_path):
    group = grp.getgrnam("nogroup") if "nogroup" in {g.gr_name for g in grp.getgrall()} else None
    gid = group.gr_gid if group else 65534
    sock = tmp_path / "app.sock"
    server = serve("deployapp", "-u", "root", "-g", str(gid), "-b", f"unix:{sock}")
    seen = get_json(server)
    assert (seen["uid"], seen["gid"]) == (0, gid)
    status = Path(f"/proc/{server.worker_pid}/status").read_text()
    assert f"Gid:\t{gid}\t{gid}" in status
    # root's own supplementary groups (initgroups), not the starting process's.
    expected = sorted({g.gr_gid for g in grp.getgrall() if "root" in g.gr_mem} | {gid})
    groups = next(line for line in status.splitlines() if line.startswith("Groups:"))
    assert sorted(int(g) for g in groups.split()[1:]) == expected
    assert sock.stat().st_gid == gid


def test_an_unknown_user_is_one_line_before_anything_is_bound():
    result = run_evserver(["hello", "-u", "no-such-user-evserver", "-l", "127.0.0.1:0"])
    assert result.returncode == 2
    assert "no user named 'no-such-user-evserver'" in error_line(result)


def test_umask_applies_to_the_unix_socket(serve, tmp_path):
    sock = tmp_path / "app.sock"
    server = serve("deployapp", "-m", "077", "-l", f"unix:{sock}")
    assert server.address.kind == "unix"
    assert stat.S_IMODE(sock.stat().st_mode) == 0o700
    assert get_json(server)["uid"] == os.getuid()


# --- logging ---------------------------------------------------------------------------------


def wait_for_text(path: Path, text: str, timeout: float = 5) -> str:
    """The file's content once ``text`` is in it (or after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while text not in path.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    return path.read_text()


def test_error_logfile_takes_the_server_log(serve, tmp_path):
    log = tmp_path / "error.log"
    server = serve("hello", "--error-logfile", str(log))
    with server.connect() as conn:
        conn.send(request("GET", "/log", host=server.address.netloc))
        assert conn.response().status == 200
    assert "[WARNING] warning-marker from the app" in wait_for_text(log, "warning-marker")
    assert "warning-marker" not in server.stderr


def test_log_config_json_sets_the_loggers(serve, tmp_path):
    out = tmp_path / "custom.log"
    config = tmp_path / "logging.json"
    config.write_text(
        json.dumps(
            {
                "version": 1,
                "formatters": {"f": {"format": "CUSTOM %(levelname)s %(message)s"}},
                "handlers": {
                    "file": {"class": "logging.FileHandler", "filename": str(out), "formatter": "f"}
                },
                "loggers": {"evserver": {"handlers": ["file"], "level": "INFO"}},
            }
        )
    )
    server = serve("hello", "--log-config", str(config))
    with server.connect() as conn:
        conn.send(request("GET", "/log", host=server.address.netloc))
        assert conn.response().status == 200
    assert "CUSTOM WARNING warning-marker from the app" in wait_for_text(out, "warning-marker")


def test_a_bad_log_config_is_one_line(tmp_path):
    config = tmp_path / "logging.json"
    config.write_text("{not json")
    result = run_evserver(["hello", "--log-config", str(config)])
    assert result.returncode == 1
    assert "cannot use log config" in error_line(result)


def test_pid_is_gunicorn_s_name_for_pid_file(serve, tmp_path):
    pid_file = tmp_path / "server.pid"
    server = serve("hello", "-p", str(pid_file))
    assert pid_file.read_text().strip() == str(server.pid)


# --- recycling by memory ------------------------------------------------------------------------

HOARDER = """
hoard = []

def application(environ, start_response):
    if environ["PATH_INFO"] == "/grow":
        hoard.append(b"x" * (128 << 20))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(sum(map(len, hoard)) >> 20).encode()]
"""


def test_max_rss_replaces_a_worker_that_grew_past_it(serve):
    server = serve("--exec", HOARDER, "--max-rss", "100")
    first = server.worker_pid
    with server.connect() as conn:
        conn.send(request("GET", "/grow", host=server.address.netloc))
        response = conn.response()
    assert (response.status, response.body) == (200, b"128")
    server.wait_for_output(r"past --max-rss 100 MiB; stopping for a fresh worker", timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pids = server.worker_pids()
        if pids and first not in pids:
            break
        time.sleep(0.05)
    assert first not in server.worker_pids()
    with server.connect() as conn:
        conn.send(request("GET", "/", host=server.address.netloc))
        assert conn.response().body == b"0"  # a fresh worker, its memory back to nothing
