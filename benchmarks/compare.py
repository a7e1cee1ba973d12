#!/usr/bin/env python3
"""Side-by-side comparison: evserver against bjoern, fastwsgi, granian, uWSGI and gunicorn.

One command sets everything up, runs every server on every workload and writes a report:

    benchmarks/compare                                    # install, then the full run
    benchmarks/compare --no-install --duration 2 --only evserver-io_uring,bjoern \\
        --workloads hello,post-1k
    benchmarks/compare --app-threads 16 --output benchmarks/RESULTS-threads.md
                                                          # thread mode: hello, blocking, django
    benchmarks/compare --workloads tls-hello --output benchmarks/RESULTS-tls.md
                                                          # HTTPS: evserver, granian, gunicorn

Each server runs one worker pinned to one CPU and the load generator runs pinned to the other.
For each workload and server it reports requests/s, the server's own CPU time per request (its
process tree, from /proc), the p99 latency, and the ratios to the best peer. It prints Markdown
and writes benchmarks/RESULTS.md. See benchmarks/README.md. Standard library only.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
APPS = HERE / "apps"
VENV = HERE / ".venv-compare"
VENV_BIN = VENV / "bin"
LOGS = VENV / "logs"

# The peers, pinned so that two runs compare the same code.
PINS = {
    "bjoern": "bjoern==3.2.2",
    "fastwsgi": "fastwsgi==0.0.9",
    "granian": "granian==2.8.7",
    "uwsgi": "uwsgi==2.0.31",
    "gunicorn": "gunicorn==27.0.1",
}
# What the `django` workload's application needs (Django 5.2: the newest for Python 3.10+).
DJANGO_PIN = "Django==5.2.19"
PIPELINE_DEPTH = 16


def log(message: str) -> None:
    print(f"[compare] {message}", file=sys.stderr, flush=True)


# --- workloads -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Workload:
    """One kind of request, and the answer a correct server gives to it."""

    name: str
    title: str
    path: str
    expect: bytes | int | None  # the exact body, its length, or None: any non-empty body
    method: str = "GET"
    body: bytes = b""
    close: bool = False  # `Connection: close`: a new connection per request
    pipeline: int = 1  # requests written back to back on a connection
    static: bool = False  # nginx can serve it as a static string (the reference line)

    def request(self) -> bytes:
        """The raw request, for probes."""
        lines = [f"{self.method} {self.path} HTTP/1.1", "Host: 127.0.0.1"]
        if self.body:
            lines += ["Content-Type: application/octet-stream", f"Content-Length: {len(self.body)}"]
        if self.close:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body

    def check(self, status: int, body: bytes) -> str | None:
        """None if STATUS and BODY are the right answer, else what is wrong."""
        if self.expect is None:
            ok = bool(body)
        elif isinstance(self.expect, bytes):
            ok = body == self.expect
        else:
            ok = len(body) == self.expect
        if status == 200 and ok:
            return None
        return f"wrong answer to {self.method} {self.path}: {status}, {len(body)} bytes"


HELLO = b"Hello, World!"
WORKLOADS = {
    w.name: w
    for w in [
        Workload("hello", "hello world", "/", HELLO, static=True),
        Workload("10k", "10 KB body", "/10k", 10_240),
        Workload("1m-list", "1 MB body from a list", "/1m", 1_048_576),
        Workload("stream", "streamed body, 100 chunks", "/stream", 102_400),
        Workload("post-1k", "POST echo of 1 KB", "/echo", 1_024, "POST", b"p" * 1_024),
        Workload("upload-64k", "64 KB upload", "/upload", b"65536", "POST", b"u" * 65_536),
        Workload("close", "Connection: close", "/", HELLO, close=True, static=True),
        Workload(
            "pipeline",
            f"pipelined, {PIPELINE_DEPTH} deep",
            "/",
            HELLO,
            pipeline=PIPELINE_DEPTH,
            static=True,
        ),
        Workload("blocking", "a view that blocks 20 ms", "/blocking", HELLO),
        Workload("django", "a Django view: SQLite query and template", "/django", None),
        # hello over HTTPS, keep-alive: runs alone (every server of the run serves TLS).
        Workload("tls-hello", "hello world over HTTPS", "/", HELLO),
    ]
}
# The workloads of applications that block or do real work: what --app-threads is for.
THREAD_WORKLOADS = ["blocking", "django"]


# --- servers -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Server:
    name: str
    project: str  # what to install (a key of PINS, "evserver" or "nginx")
    detail: str  # backend / mode, for the table
    command: Callable[[argparse.Namespace, int], list[str]]
    peer: bool = True  # counts for "best peer"
    static_only: bool = False  # serves only the workloads marked static (nginx)
    threads: bool = True  # can run the application on a pool of threads (--app-threads)


# --- TLS (--tls) -----------------------------------------------------------------------------

# The servers that serve HTTPS in this comparison (--tls): evserver, granian, gunicorn.
TLS_SERVERS = ["evserver-io_uring", "evserver-poll", "granian", "gunicorn"]


def tls_flags(args: argparse.Namespace, cert_flag: str, key_flag: str) -> list[str]:
    """A server's certificate and key flags under --tls (nothing without it)."""
    if not args.tls:
        return []
    cert, key = tls_files()
    return [cert_flag, str(cert), key_flag, str(key)]


def tls_files() -> tuple[Path, Path]:
    """A self-signed P-256 certificate for 127.0.0.1 (made once per run with openssl)."""
    cert, key = LOGS / "tls-cert.pem", LOGS / "tls-key.pem"
    if not cert.exists():
        LOGS.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj",
             "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True, capture_output=True,
        )  # fmt: skip
    return cert, key


def scheme(args: argparse.Namespace) -> str:
    return "https" if args.tls else "http"


def evserver_command(backend: str) -> Callable[[argparse.Namespace, int], list[str]]:
    def command(args: argparse.Namespace, port: int) -> list[str]:
        listen = f"127.0.0.1:{port}"
        python = args.evserver_python or str(VENV_BIN / "python")
        command = [python, "-m", "evserver", "workloads", "-l", listen, "--backend", backend]
        command += tls_flags(args, "--certfile", "--keyfile")
        if args.app_threads > 1:
            command += ["--threads", str(args.app_threads)]
        return command

    return command


def peer_script(name: str) -> Callable[[argparse.Namespace, int], list[str]]:
    def command(args: argparse.Namespace, port: int) -> list[str]:
        return [str(VENV_BIN / "python"), "run_peer.py", name, str(port)]

    return command


def granian_command(args: argparse.Namespace, port: int) -> list[str]:
    return [
        str(VENV_BIN / "granian"),
        "--interface",
        "wsgi",
        "--workers",
        "1",
        "--blocking-threads",
        str(args.app_threads),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        *tls_flags(args, "--ssl-certificate", "--ssl-keyfile"),
        "workloads:application",
    ]


def uwsgi_command(args: argparse.Namespace, port: int) -> list[str]:
    # --http11-socket: uWSGI's own HTTP/1.1 parser with keep-alive, no proxy process.
    return [
        str(VENV_BIN / "uwsgi"),
        "--http11-socket",
        f"127.0.0.1:{port}",
        "--wsgi-file",
        "workloads.py",
        "--callable",
        "application",
        "--processes",
        "1",
        "--disable-logging",
        "--need-app",
        "--die-on-term",
        "--listen",
        "1024",
        *(["--threads", str(args.app_threads)] if args.app_threads > 1 else []),
    ]


def gunicorn_command(args: argparse.Namespace, port: int) -> list[str]:
    # The default (sync) worker, as most deployments run it; it closes after each response.
    # With threads, the gthread worker (keep-alive), as deployments with threads run it.
    threads = ["-k", "gthread", "--threads", str(args.app_threads)] if args.app_threads > 1 else []
    return [
        str(VENV_BIN / "gunicorn"),
        *threads,
        "--workers",
        "1",
        "--bind",
        f"127.0.0.1:{port}",
        "--backlog",
        "1024",
        *tls_flags(args, "--certfile", "--keyfile"),
        "workloads:application",
    ]


def nginx_command(args: argparse.Namespace, port: int) -> list[str]:
    conf = LOGS / "nginx.conf"
    conf.write_text(
        f"""daemon off;
master_process off;
worker_processes 1;
error_log {LOGS / "nginx.error.log"} warn;
pid {LOGS / "nginx.pid"};
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    client_body_temp_path {LOGS};
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        location / {{ default_type text/plain; return 200 "Hello, World!"; }}
    }}
}}
"""
    )
    return [shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf), "-e", "stderr"]


SERVERS = {
    s.name: s
    for s in [
        Server("evserver-io_uring", "evserver", "io_uring", evserver_command("io_uring"), False),
        Server("evserver-poll", "evserver", "poll (epoll)", evserver_command("poll"), False),
        Server("bjoern", "bjoern", "libev", peer_script("bjoern"), threads=False),
        Server("fastwsgi", "fastwsgi", "libuv", peer_script("fastwsgi"), threads=False),
        Server("granian", "granian", "WSGI, blocking threads", granian_command),
        Server("uwsgi", "uwsgi", "http11-socket, 1 process", uwsgi_command),
        Server("gunicorn", "gunicorn", "sync worker (gthread with threads)", gunicorn_command),
        Server("nginx", "nginx", "static string (reference)", nginx_command, False, True, False),
    ]
}


# --- load generators -----------------------------------------------------------------------


@dataclasses.dataclass
class Measure:
    requests: int
    seconds: float
    p99_ms: float | None
    errors: int
    non_2xx: int
    client_cpu_s: float


class LoadGenerator:
    """What the comparison needs from a load generator. Add one to GENERATORS to switch."""

    name = "?"

    def ensure(self) -> None:
        """Install what is missing (called unless --no-install)."""

    def available(self) -> bool:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def describe(self, args: argparse.Namespace) -> str:
        raise NotImplementedError

    def run(
        self, args: argparse.Namespace, port: int, workload: Workload, seconds: float
    ) -> Measure:
        raise NotImplementedError


def timed_child(command: list[str], timeout: float) -> tuple[subprocess.CompletedProcess, float]:
    """Run COMMAND; return its result and the CPU seconds it used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result, cpu


def duration_seconds(value: str, unit: str) -> float:
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]


class Wrk(LoadGenerator):
    """wrk (the Debian package), with a Lua script for request bodies and pipelining."""

    name = "wrk"

    def ensure(self) -> None:
        if shutil.which("wrk") is None:
            apt_install("wrk")

    def available(self) -> bool:
        return shutil.which("wrk") is not None

    def version(self) -> str:
        result = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        match = re.search(r"wrk (\S+)", result.stdout + result.stderr)
        return f"wrk {match.group(1)}" if match else "wrk"

    def describe(self, args: argparse.Namespace) -> str:
        return f"`wrk -t{args.threads} -c{args.connections} --latency`"

    @staticmethod
    def script(workload: Workload) -> Path:
        """A Lua script that sends WORKLOAD's request (once, or PIPELINE_DEPTH times)."""
        lines = [f'wrk.method = "{workload.method}"']
        if workload.body:
            # Bodies here are one repeated letter: no Lua escaping needed.
            lines.append(f'wrk.body = string.rep("{chr(workload.body[0])}", {len(workload.body)})')
            lines.append('wrk.headers["Content-Type"] = "application/octet-stream"')
        if workload.close:
            lines.append('wrk.headers["Connection"] = "close"')
        if workload.pipeline > 1:
            lines += [
                "init = function(args)",
                "  local r = {}",
                f"  for i = 1, {workload.pipeline} do r[i] = wrk.format(nil, nil) end",
                "  req = table.concat(r)",
                "end",
                "request = function() return req end",
            ]
        path = LOGS / f"wrk-{workload.name}.lua"
        path.write_text("\n".join(lines) + "\n")
        return path

    def run(
        self, args: argparse.Namespace, port: int, workload: Workload, seconds: float
    ) -> Measure:
        command = ["taskset", "-c", args.client_cpu, "wrk", f"-t{args.threads}"]
        command += [f"-c{args.connections}", f"-d{seconds:g}s", "--latency"]
        url = f"{scheme(args)}://127.0.0.1:{port}{workload.path}"
        command += ["-s", str(self.script(workload)), url]
        result, cpu = timed_child(command, seconds + 60)
        if result.returncode != 0:
            detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
            raise RuntimeError(f"wrk failed ({result.returncode}): {detail[:1]}")
        out = result.stdout
        match = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h),", out)
        if not match:
            raise ValueError(f"cannot read wrk's output:\n{out}")
        p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.MULTILINE)
        errors = re.search(
            r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
        )
        non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        return Measure(
            requests=int(match.group(1)),
            seconds=duration_seconds(match.group(2), match.group(3)),
            # wrk does not time requests a script sends several at a time.
            p99_ms=duration_seconds(*p99.groups()) * 1e3
            if p99 and workload.pipeline == 1
            else None,
            # A read error is how wrk counts a server closing after each answer: not an error.
            errors=sum(int(v) for i, v in enumerate(errors.groups()) if i != 1) if errors else 0,
            non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
            client_cpu_s=cpu,
        )


GENERATORS: dict[str, type[LoadGenerator]] = {"wrk": Wrk}


# --- setup ---------------------------------------------------------------------------------


def apt_install(*packages: str) -> None:
    """apt-get install PACKAGES (services not started), apt-get update once first if needed."""
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    # RUNLEVEL=1 keeps invoke-rc.d from starting a packaged service (nginx on port 80).
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", RUNLEVEL="1")
    log(f"apt-get install {' '.join(packages)}")
    if subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=False).returncode == 0:
        return
    log("apt-get update")
    subprocess.run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL, check=True)
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=True)


def venv_has(module: str) -> bool:
    python = VENV_BIN / "python"
    if not python.exists():
        return False
    check = subprocess.run([python, "-c", f"import {module}"], capture_output=True, check=False)
    return check.returncode == 0


def pip(*args: str, log_name: str) -> bool:
    """Run pip in the venv with its output in a log file; on failure show the log's tail."""
    log_path = LOGS / log_name
    with open(log_path, "w") as out:
        command = [VENV_BIN / "python", "-m", "pip", "install", "--disable-pip-version-check"]
        result = subprocess.run(
            [*command, *args], stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        for line in log_path.read_text(errors="replace").splitlines()[-15:]:
            print(f"    {line}", file=sys.stderr)
        log(f"pip install {' '.join(args)} failed; the log is {log_path}")
    return result.returncode == 0


def install(projects: set[str], args: argparse.Namespace) -> dict[str, str]:
    """Create or reuse the venv and install what the selected servers need.

    Returns {project: reason} for the projects that could not be installed."""
    failures = {}
    if not (VENV_BIN / "python").exists():
        log(f"creating the venv {VENV}")
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    if "bjoern" in projects and not Path("/usr/include/ev.h").exists():
        apt_install("libev-dev")
    if "nginx" in projects and shutil.which("nginx") is None:
        try:
            apt_install("nginx-light")
        except subprocess.CalledProcessError:
            failures["nginx"] = "apt-get install nginx-light failed"
    for project, pin in PINS.items():
        if project in projects and package_version(project) != pin.split("==")[1]:
            log(f"pip install {pin}")
            if not pip(pin, log_name=f"{project}.log"):
                failures[project] = f"install failed, see {LOGS / (project + '.log')}"
    if "django" in args.workloads and package_version("django") != DJANGO_PIN.split("==")[1]:
        log(f"pip install {DJANGO_PIN}")
        if not pip(DJANGO_PIN, log_name="django.log"):
            failures["django"] = f"install failed, see {LOGS / 'django.log'}"
    if "evserver" in projects and not args.evserver_python:
        log(f"pip install {REPO} (a release build of the Rust engine; may take minutes)")
        if not pip("--force-reinstall", "--no-deps", str(REPO), log_name="evserver.log"):
            failures["evserver"] = f"install failed, see {LOGS / 'evserver.log'}"
    return failures


def package_version(name: str, python: str | None = None) -> str:
    code = f"import importlib.metadata as m; print(m.version({name!r}))"
    try:
        result = subprocess.run(
            [python or VENV_BIN / "python", "-c", code],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return "not installed"
    return result.stdout.strip() if result.returncode == 0 else "not installed"


def nginx_version() -> str:
    if shutil.which("nginx") is None:
        return "not installed"
    result = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=False)
    return result.stderr.strip().rsplit("/", 1)[-1] or "unknown"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


# --- CPU time of a process tree ------------------------------------------------------------


def read_stat(pid: int) -> tuple[int, int] | None:
    """(ppid, CPU ticks) of a process: utime + stime of all its threads, plus cutime + cstime
    (its children that have exited and been waited for). None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 of proc(5) (state): ppid is field 4, utime..cstime fields 14..17.
    return int(fields[1]), sum(int(value) for value in fields[11:15])


def tree_cpu_seconds(root: int) -> float:
    """CPU time used so far by ROOT and every living descendant of it, in seconds."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := read_stat(int(entry))) is not None:
            stats[int(entry)] = stat
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        if pid in stats:
            total += stats[pid][1]
            pending.extend(children.get(pid, []))
    return total / os.sysconf("SC_CLK_TCK")


# --- probes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def probe(port: int, workload: Workload, tls: bool = False) -> str | None:
    """One request of WORKLOAD: None if the answer is right, else what went wrong."""
    connection = (
        http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=5, context=ssl._create_unverified_context()
        )
        if tls
        else http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    )
    try:
        headers = {"Connection": "close"} if workload.close else {}
        if workload.body:
            headers["Content-Type"] = "application/octet-stream"
        connection.request(workload.method, workload.path, workload.body or None, headers)
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as error:
        return f"no answer ({error.__class__.__name__})"
    finally:
        connection.close()
    return workload.check(response.status, body)


def pipelines(port: int, workload: Workload) -> bool:
    """Whether the server answers two requests written back to back on one connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(workload.request() * 2)
        received = b""
        deadline = time.monotonic() + 3
        try:
            while received.count(HELLO) < 2 and time.monotonic() < deadline:
                data = sock.recv(65536)
                if not data:
                    break
                received += data
        except OSError:
            pass
    return received.count(HELLO) == 2


def wait_ready(
    process: subprocess.Popen, port: int, timeout: float, tls: bool = False
) -> str | None:
    """Poll until the server answers hello correctly: None when it does, else the reason."""
    deadline = time.monotonic() + timeout
    problem = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"exited with status {process.returncode}"
        problem = probe(port, WORKLOADS["hello"], tls)
        if problem is None:
            return None
        if problem.startswith("wrong answer"):
            return problem
        time.sleep(0.1)
    return f"not ready after {timeout:.0f} s: {problem}"


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group (it has one of its own), then SIGKILL if needed."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass
    try:  # a worker that outlived its parent would still be in the group
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip()[:120] if lines else ""


# --- one server on one workload ------------------------------------------------------------


class Running:
    """A server started on a free port, pinned to the server CPU."""

    def __init__(self, server: Server, args: argparse.Namespace):
        self.port = free_port()
        self.stderr_path = LOGS / f"{server.name}.stderr"
        command = ["taskset", "-c", args.server_cpu, *server.command(args, self.port)]
        env = dict(os.environ)
        if args.evserver_pythonpath and server.project == "evserver":
            env["PYTHONPATH"] = args.evserver_pythonpath
        with open(self.stderr_path, "ab") as stderr:
            self.process = subprocess.Popen(
                command,
                cwd=APPS,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
            )
        self.problem = wait_ready(self.process, self.port, args.start_timeout, args.tls)
        if self.problem is not None:
            detail = last_line(self.stderr_path)
            self.problem = f"{self.problem}: {detail}" if detail else self.problem


def measure(
    running: Running, workload: Workload, args: argparse.Namespace, generator: LoadGenerator
) -> dict:
    process, port = running.process, running.port
    problem = probe(port, workload, args.tls)
    if problem is not None:
        return {"failed": problem}
    if workload.pipeline > 1 and (args.tls or not pipelines(port, workload)):
        return {"unsupported": "does not answer pipelined requests"}
    if args.warmup > 0:
        generator.run(args, port, workload, args.warmup)
    cpu_before = tree_cpu_seconds(process.pid)
    m = generator.run(args, port, workload, args.duration)
    cpu_after = tree_cpu_seconds(process.pid)
    if process.poll() is not None:
        return {"failed": f"exited during the run with status {process.returncode}"}
    problem = probe(port, workload, args.tls)
    if problem is not None:
        return {"failed": f"after the run: {problem}"}
    if m.requests < args.duration * 10:
        # A server that stalls (wrk waits out its timeouts) gives a handful of requests.
        return {
            "failed": f"{m.requests} requests completed, {m.errors} socket errors "
            "(connect, write or timeout)"
        }
    server_cpu = cpu_after - cpu_before
    return {
        "requests": m.requests,
        "seconds": m.seconds,
        "req_per_s": m.requests / m.seconds,
        "cpu_us_per_req": server_cpu * 1e6 / m.requests,
        "p99_ms": m.p99_ms,
        "server_cpu_pct": 100 * server_cpu / m.seconds,
        "client_cpu_pct": 100 * m.client_cpu_s / m.seconds,
        "errors": m.errors,
        "non_2xx": m.non_2xx,
    }


def run_server(
    server: Server, workloads: list[Workload], args: argparse.Namespace, generator: LoadGenerator
) -> dict[str, dict]:
    """Start SERVER once and run every workload on it (restarting it if it died)."""
    results: dict[str, dict] = {}
    running: Running | None = None
    try:
        for workload in workloads:
            if server.static_only and not workload.static:
                continue
            if running is None or running.process.poll() is not None:
                if running is not None:
                    stop(running.process)
                running = Running(server, args)
                if running.problem is not None:
                    log(f"{server.name} failed to start: {running.problem}")
                    results[workload.name] = {"failed": running.problem}
                    continue
            log(f"{server.name}: {workload.name}")
            try:
                result = measure(running, workload, args, generator)
            except (RuntimeError, ValueError, OSError, subprocess.TimeoutExpired) as error:
                result = {"failed": str(error).splitlines()[0]}
            if "failed" in result:
                log(f"{server.name} {workload.name} failed: {result['failed']}")
            results[workload.name] = result
    finally:
        if running is not None:
            stop(running.process)
    return results


# --- report --------------------------------------------------------------------------------


def best_peers(results: dict[str, dict[str, dict]], workload: str) -> tuple[float, float]:
    """(lowest CPU µs/req, highest req/s) among the peers that ran WORKLOAD."""
    good = [
        r[workload]
        for name, r in results.items()
        if SERVERS[name].peer and "req_per_s" in r.get(workload, {})
    ]
    cpu = min((g["cpu_us_per_req"] for g in good), default=0.0)
    rps = max((g["req_per_s"] for g in good), default=0.0)
    return cpu, rps


def ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}" if value and base else "—"


def summary_table(results: dict[str, dict[str, dict]], workloads: list[Workload]) -> list[str]:
    """Servers × workloads: CPU µs/req, with the ratio to the best peer."""
    lines = [
        "| server | " + " | ".join(w.name for w in workloads) + " |",
        "| --- |" + " ---: |" * len(workloads),
    ]
    best = {w.name: best_peers(results, w.name) for w in workloads}
    for name, per_workload in results.items():
        cells = []
        for w in workloads:
            r = per_workload.get(w.name)
            if r is None:
                cells.append("")
            elif "req_per_s" in r:
                cells.append(
                    f"{r['cpu_us_per_req']:.2f} ({ratio(r['cpu_us_per_req'], best[w.name][0])})"
                )
            else:
                cells.append("n/a" if "unsupported" in r else "failed")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def markdown(header: dict, results: dict[str, dict[str, dict]], workloads: list[Workload]) -> str:
    out = [
        "# evserver side by side with other WSGI servers",
        "",
        f"- date: {header['date']}",
        f"- machine: {header['cpu']} ({header['cpus']} CPUs), kernel {header['kernel']}",
        f"- Python {header['python']}; {header['versions']}; load generator {header['generator']}",
        f"- method: {header['method']}",
        "",
        "## Server CPU µs per request (÷ the best peer's: below 1.00 is cheaper than every peer)",
        "",
        *summary_table(results, workloads),
    ]
    notes = []
    for w in workloads:
        best_cpu, best_rps = best_peers(results, w.name)
        out += [
            "",
            f"## {w.title} (`{w.method} {w.path}`)",
            "",
            (
                "| server | mode | req/s | CPU µs/req | p99 ms | CPU/req ÷ best peer "
                "| req/s ÷ best peer | server CPU % | client CPU % |"
            ),
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, per_workload in results.items():
            r = per_workload.get(w.name)
            if r is None:
                continue
            detail = SERVERS[name].detail
            if "req_per_s" not in r:
                reason = (r.get("failed") or r.get("unsupported", "")).replace("|", "\\|")
                word = "failed" if "failed" in r else "n/a"
                out.append(f"| {name} | {detail} | {word}: {reason} | | | | | | |")
                continue
            p99 = f"{r['p99_ms']:.2f}" if r["p99_ms"] is not None else "—"
            out.append(
                f"| {name} | {detail} | {r['req_per_s']:,.0f} | {r['cpu_us_per_req']:.2f} "
                f"| {p99} | {ratio(r['cpu_us_per_req'], best_cpu)} "
                f"| {ratio(r['req_per_s'], best_rps)} | {r['server_cpu_pct']:.0f} "
                f"| {r['client_cpu_pct']:.0f} |"
            )
            if r["errors"] or r["non_2xx"]:
                notes.append(
                    f"- {name}, {w.name}: {r['errors']} socket errors, {r['non_2xx']} non-2xx "
                    "responses (figures suspect)"
                )
    if notes:
        out += ["", "## Warnings", "", *notes]
    return "\n".join(out) + "\n"


README = REPO / "README.md"
README_BEGIN, README_END = "<!-- results:begin -->", "<!-- results:end -->"


def update_readme(header: dict, results: dict[str, dict[str, dict]], workloads: list) -> None:
    """Replace the README's table (between its markers) with this run's summary."""
    text = README.read_text()
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        log(f"{README} has no {README_BEGIN} ... {README_END} markers: not updated")
        return
    block = [
        README_BEGIN,
        *summary_table(results, workloads),
        "",
        (
            f"{header['date']}; {header['cpu']} ({header['cpus']} CPUs), "
            f"kernel {header['kernel']}; Python {header['python']}; {header['versions']}; "
            f"{header['generator']}; {header['method']}."
        ),
        "",
    ]
    README.write_text(text[:begin] + "\n".join(block) + text[end:])
    log(f"updated the table in {README}")


# --- main ----------------------------------------------------------------------------------


def names(value: str, known: dict, what: str, parser: argparse.ArgumentParser) -> list[str]:
    chosen = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in known]
    if unknown or not chosen:
        parser.error(
            f"unknown {what} {', '.join(unknown) or '(none)'}; choose from {', '.join(known)}"
        )
    return chosen


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", default=",".join(SERVERS), help=f"servers to run, of: {', '.join(SERVERS)}"
    )
    parser.add_argument(
        "--workloads",
        help=f"workloads to run, of: {', '.join(WORKLOADS)} (default: all but "
        f"{', '.join(THREAD_WORKLOADS)}; with --app-threads: hello, {', '.join(THREAD_WORKLOADS)})",
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run (10)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warmup (2; 0: none)")
    parser.add_argument("--connections", type=int, default=50, help="client connections (50)")
    parser.add_argument("--threads", type=int, default=1, help="client threads (1)")
    parser.add_argument(
        "--app-threads",
        type=int,
        default=1,
        metavar="N",
        help="threads per server that run the application (1); with N > 1 every server runs "
        "N: evserver and uWSGI --threads N, gunicorn -k gthread --threads N, granian "
        "--blocking-threads N (servers without threads are left out)",
    )
    parser.add_argument("--generator", default="wrk", choices=GENERATORS, help="load generator")
    parser.add_argument("--server-cpu", default="0", help="taskset CPU list of the server (0)")
    parser.add_argument("--client-cpu", default="1", help="taskset CPU list of the client (1)")
    parser.add_argument("--start-timeout", type=float, default=20, help="seconds to wait (20)")
    parser.add_argument("--no-install", action="store_true", help="skip the venv/pip/apt step")
    parser.add_argument(
        "--evserver-python",
        metavar="PYTHON",
        help="run evserver with this interpreter instead of the venv's (no pip install)",
    )
    parser.add_argument(
        "--evserver-pythonpath",
        metavar="DIR",
        help="PYTHONPATH for evserver, e.g. python/ of a checkout with a built extension",
    )
    parser.add_argument(
        "--output", default=str(HERE / "RESULTS.md"), help="Markdown report (RESULTS.md)"
    )
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    parser.add_argument(
        "--tls",
        action="store_true",
        help=f"serve HTTPS (a self-signed certificate; servers: {', '.join(TLS_SERVERS)})",
    )
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help="also put the summary table in README.md (between its results markers)",
    )
    args = parser.parse_args()
    only_given = any(a == "--only" or a.startswith("--only=") for a in sys.argv[1:])
    args.only = names(args.only, SERVERS, "server", parser)
    if args.workloads is None:
        if args.app_threads > 1:
            args.workloads = ",".join(["hello", *THREAD_WORKLOADS])
        else:
            args.workloads = ",".join(
                w for w in WORKLOADS if w not in THREAD_WORKLOADS and w != "tls-hello"
            )
    args.workloads = names(args.workloads, WORKLOADS, "workload", parser)
    if "tls-hello" in args.workloads:
        if len(args.workloads) > 1:
            parser.error("tls-hello runs alone: every server of the run serves HTTPS")
        args.tls = True
    if args.app_threads < 1:
        parser.error("--app-threads must be at least 1")
    if args.app_threads > 1:
        no_threads = [n for n in args.only if not SERVERS[n].threads]
        if no_threads and only_given:
            parser.error(f"{', '.join(no_threads)} cannot run the application on threads")
        args.only = [n for n in args.only if SERVERS[n].threads]
    if args.tls:
        no_tls = [n for n in args.only if n not in TLS_SERVERS]
        if no_tls and only_given:
            parser.error(f"{', '.join(no_tls)} are not compared over TLS")
        args.only = [n for n in args.only if n in TLS_SERVERS]
    if args.duration < 1 or args.warmup < 0 or args.connections < 1:
        parser.error("--duration and --connections must be at least 1, --warmup at least 0")
    return args


def main() -> int:
    args = parse_args()
    if sys.platform != "linux":
        log("this comparison reads /proc and uses taskset: Linux only")
        return 2
    generator = GENERATORS[args.generator]()
    projects = {SERVERS[name].project for name in args.only}
    failures: dict[str, str] = {}
    if not args.no_install:
        generator.ensure()
        failures = install(projects, args)
    LOGS.mkdir(parents=True, exist_ok=True)
    if not generator.available() or shutil.which("taskset") is None:
        log(f"{generator.name} and taskset are needed")
        return 2
    workloads = [WORKLOADS[name] for name in args.workloads]
    results: dict[str, dict[str, dict]] = {}
    if "django" in failures:
        log(f"the django workload is left out: {failures['django']}")
        workloads = [w for w in workloads if w.name != "django"]
    for name in args.only:
        server = SERVERS[name]
        if server.project in failures:
            results[name] = {w.name: {"failed": failures[server.project]} for w in workloads}
            continue
        results[name] = run_server(server, workloads, args, generator)

    evserver_python = args.evserver_python or str(VENV_BIN / "python")
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    evserver = f"evserver {package_version('evserver', evserver_python)}"
    versions = [f"{evserver} (commit {commit})" if commit else evserver]
    versions += [f"{p} {package_version(p)}" for p in PINS if p in projects]
    if "nginx" in projects:
        versions.append(f"nginx {nginx_version()}")
    header = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "kernel": platform.release(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "versions": ", ".join(versions),
        "generator": generator.version(),
        "method": (
            f"one worker per server pinned to CPU {args.server_cpu}"
            + (
                f", {args.app_threads} threads running the application in each"
                if args.app_threads > 1
                else ""
            )
            + f"; {generator.describe(args)} "
            f"pinned to CPU {args.client_cpu}, {args.duration:g} s per workload after a "
            f"{args.warmup:g} s warmup; server CPU = utime+stime of the server's process tree "
            "from /proc; best peer = the best of the peers above"
        ),
    }
    report = markdown(header, results, workloads)
    print(report)
    Path(args.output).write_text(report)
    log(f"wrote {args.output}")
    if args.update_readme:
        update_readme(header, results, workloads)
    if args.json:
        Path(args.json).write_text(json.dumps({"header": header, "results": results}, indent=2))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
