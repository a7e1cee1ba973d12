#!/usr/bin/env python3
"""Load generators compared: `evserver bench` against wrk, both against nginx.

    python3 benchmarks/bench_vs_wrk.py                  # 3 rounds of 10 s each
    python3 benchmarks/bench_vs_wrk.py --rounds 1 --duration 3

nginx (the Debian package, installed with apt-get when missing) runs one worker on a free
loopback port, from its own temporary prefix, pinned to one CPU, in two setups measured in the
same run:

- "debian": the configuration the package ships (nginx.conf and sites-available/default: the
  welcome page from disk with sendfile, access log on, gzip on, 1,000 requests per keep-alive
  connection), with paths moved into the prefix;
- "tuned": a 13-byte `return 200`, no access log, unlimited keep-alive requests. nginx is twice
  as fast here, so wrk never sleeps: the hardest case for a generator that does.

Each generator runs with one thread and 50 connections, pinned to another CPU, in turn within
each round. The figures: requests per second, and the generator's own CPU time per
request (user + system, from the kernel's accounting of the finished generator process, read
with wait4). The goal of issue 6: evserver bench at most 0.7 times wrk's CPU per request.

`evserver bench` is the release build of the standalone binary (cargo build --release -p
evserver-bench), so no Python start-up is counted. Writes benchmarks/RESULTS-bench.md.
Standard library only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compare import apt_install, free_port  # this directory's side-by-side comparison

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BODY = "Hello, World!"
SETUPS = ("debian", "tuned")
WELCOME_PAGES = ("/var/www/html/index.nginx-debian.html", "/usr/share/nginx/html/index.html")


def log(message: str) -> None:
    print(f"[bench_vs_wrk.py] {message}", file=sys.stderr, flush=True)


def nginx_binary() -> str:
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and Path(candidate).exists():
            return candidate
    apt_install("nginx")
    return shutil.which("nginx") or "/usr/sbin/nginx"


def build_bench() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    log("cargo build --release -p evserver-bench")
    subprocess.run(
        ["cargo", "build", "--release", "-q", "-p", "evserver-bench"], cwd=REPO, check=True
    )
    return target / "release" / "evserver-bench"


def nginx_config(setup: str, prefix: Path, port: int) -> str:
    """The text of nginx.conf for SETUP ("debian" or "tuned"), everything under PREFIX."""
    common = f"""worker_processes 1;
daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
"""
    temp_paths = f"""    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
"""
    if setup == "tuned":
        return f"""{common}events {{ worker_connections 4096; }}
http {{
    access_log off;
{temp_paths}    keepalive_requests 100000000;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location / {{ default_type text/plain; return 200 "{BODY}"; }}
    }}
}}
"""
    # Debian's nginx.conf and sites-available/default, as shipped (worker_processes 1); the
    # welcome page is copied to {prefix}/html by start_nginx.
    return f"""{common}events {{ worker_connections 768; }}
http {{
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {prefix}/logs/access.log;
    gzip on;
{temp_paths}    server {{
        listen 127.0.0.1:{port} default_server;
        root {prefix}/html;
        index index.html index.htm index.nginx-debian.html;
        server_name _;
        location / {{ try_files $uri $uri/ =404; }}
    }}
}}
"""


def start_nginx(binary: str, setup: str, cpu: str, prefix: Path, port: int) -> subprocess.Popen:
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    if setup == "debian":
        page = next((Path(p) for p in WELCOME_PAGES if Path(p).exists()), None)
        if page is None:
            raise RuntimeError(f"no nginx welcome page among {WELCOME_PAGES}")
        (prefix / "html").mkdir(exist_ok=True)
        shutil.copy(page, prefix / "html" / "index.html")
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_config(setup, prefix, port))
    process = subprocess.Popen(
        ["taskset", "-c", cpu, binary, "-p", str(prefix), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"nginx exited: {process.stderr.read().decode()}") from None
            time.sleep(0.05)
    raise RuntimeError("nginx did not start")


def run_measured(command: list[str], timeout: float) -> tuple[str, float]:
    """Runs COMMAND; returns its stdout and its own CPU seconds (user + system)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"{command[2]} did not finish")
        time.sleep(0.02)
    out = process.stdout.read().decode() if process.stdout else ""
    err = process.stderr.read().decode() if process.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({code}): {err.strip()}")
    return out, usage.ru_utime + usage.ru_stime


def parse_wrk(output: str) -> tuple[int, float, int]:
    match = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m),", output)
    if not match:
        raise ValueError(f"cannot read wrk's output:\n{output}")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[match.group(3)]
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    count = sum(int(g) for g in errors.groups()) if errors else 0
    return int(match.group(1)), float(match.group(2)) * scale, count


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of process PID, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(name: str, args: argparse.Namespace, bench: Path, port: int, server: int) -> dict:
    url = f"http://127.0.0.1:{port}/"
    server_before = process_cpu_seconds(server)
    started = time.monotonic()
    pin = ["taskset", "-c", args.generator_cpu]
    if name == "wrk":
        command = [*pin, "wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", url]
        out, cpu = run_measured(command, args.duration + 60)
        requests, seconds, errors = parse_wrk(out)
    else:
        command = [*pin, str(bench), "-t1", f"-c{args.connections}", f"-d{args.duration}s"]
        command += ["--json", "-", url]
        out, cpu = run_measured(command, args.duration + 60)
        run = json.loads(out)["runs"][0]
        requests, seconds, errors = run["requests"], run["duration_s"], run["errors"]["total"]
    server_share = (process_cpu_seconds(server) - server_before) / (time.monotonic() - started)
    return {
        "requests": requests,
        "server_cpu_pct": 100 * server_share,
        "rps": requests / seconds if seconds else 0.0,
        "cpu_us_per_request": cpu * 1e6 / requests if requests else float("inf"),
        "errors": errors,
    }


def measure_setup(setup: str, args: argparse.Namespace, nginx: str, bench: Path) -> str:
    """Runs both generators in turn against nginx in SETUP; returns the Markdown table."""
    results: dict[str, list[dict]] = {"wrk": [], "evserver bench": []}
    with tempfile.TemporaryDirectory(prefix="bench-vs-wrk-") as tmp:
        prefix = Path(tmp)
        port = free_port()
        server = start_nginx(nginx, setup, args.server_cpu, prefix, port)
        try:
            for round_no in range(1, args.rounds + 1):
                for name, figures_so_far in results.items():
                    figures = measure(name, args, bench, port, server.pid)
                    log(
                        f"{setup} round {round_no} {name}: {figures['rps']:.0f} req/s, "
                        f"{figures['cpu_us_per_request']:.2f} us CPU/request, "
                        f"nginx at {figures['server_cpu_pct']:.0f}% CPU, "
                        f"{figures['errors']} errors"
                    )
                    figures_so_far.append(figures)
                    # The access log grows by about 40 MB a second: keep only the last run's.
                    access_log = prefix / "logs" / "access.log"
                    if access_log.exists():
                        access_log.write_bytes(b"")
        finally:
            server.terminate()
            server.wait(timeout=10)

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    wrk_cpu = median("wrk", "cpu_us_per_request")
    rows = [
        "| generator | requests/s | CPU µs/request | CPU vs wrk | nginx CPU | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, runs in results.items():
        cpu = median(name, "cpu_us_per_request")
        rows.append(
            f"| {name} | {median(name, 'rps'):,.0f} | {cpu:.2f} | {cpu / wrk_cpu:.2f}x | "
            f"{median(name, 'server_cpu_pct'):.0f}% | {sum(r['errors'] for r in runs)} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--generator-cpu", default="1")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS-bench.md")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]

    if shutil.which("wrk") is None:
        apt_install("wrk")
    nginx = nginx_binary()
    bench = build_bench()
    tables = {setup: measure_setup(setup, args, nginx, bench) for setup in SETUPS}
    cpu_model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    nginx_version = subprocess.run(
        [nginx, "-v"], capture_output=True, text=True, check=False
    ).stderr.strip()
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    wrk_line = (wrk_version.stdout + wrk_version.stderr).splitlines()[0]
    report = f"""# Load generators: evserver bench against wrk

Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC with
`python3 benchmarks/bench_vs_wrk.py --rounds {args.rounds} --duration {args.duration}`
on {cpu_model} ({os.cpu_count()} CPUs), Linux {platform.release()}.
Target: {nginx_version}, one worker pinned to CPU {args.server_cpu}, in two setups (below).
Generators: one thread, {args.connections} connections, pinned to
CPU {args.generator_cpu}, {args.duration} s each, taking turns within each of {args.rounds}
rounds; medians shown. CPU is the generator process's own user + system time divided by the
requests it completed; nginx CPU is the server's share of its core meanwhile (near 100%: the
server, not the generator, set the pace). Load average before/after: {load_before:.2f} /
{os.getloadavg()[0]:.2f} (other work on the machine skews every figure). {wrk_line}.

Goal (issue 6): evserver bench at most 0.7x wrk's CPU per request.

## nginx as Debian ships it (one worker)

Its default site: the 615-byte welcome page from disk (sendfile), access log on, gzip on,
1,000 requests per keep-alive connection.

{tables["debian"]}

## nginx tuned

A 13-byte `return 200 "{BODY}"`, no access log, unlimited keep-alive requests. nginx answers
about twice as fast, so wrk (busy on every turn) never sleeps, while a generator that needs
less CPU than the server idles between batches and pays for each wake-up.

{tables["tuned"]}
"""
    args.output.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
