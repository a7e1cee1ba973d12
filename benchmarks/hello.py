#!/usr/bin/env python3
"""Hello-world benchmark: evserver (io_uring and poll backends) against bjoern.

One command sets everything up and prints a Markdown table:

    python3 benchmarks/hello.py                 # install, 3 rounds of 10 s each
    python3 benchmarks/hello.py --no-install --rounds 1 --duration 5 --servers bjoern

Each server runs one worker pinned to one CPU, wrk runs pinned to another, and the figure
that matters is the server's own CPU time per request, read from /proc around the wrk run.
See benchmarks/README.md. Standard library only.
"""

from __future__ import annotations

import argparse
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
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
APPS = HERE / "apps"
VENV = HERE / ".venv"
VENV_BIN = VENV / "bin"
LOGS = VENV / "logs"

EXPECTED_BODY = b"Hello, World!"

# name -> (project, backend); the order is the default order of a round.
SERVERS = {
    "evserver-io_uring": ("evserver", "io_uring"),
    "evserver-poll": ("evserver", "poll"),
    "bjoern": ("bjoern", "libev"),
}
BASELINE = "bjoern"


def log(message: str) -> None:
    print(f"[hello.py] {message}", file=sys.stderr, flush=True)


# --- setup ---------------------------------------------------------------------------------


def apt_install(*packages: str) -> None:
    """apt-get install PACKAGES, running apt-get update once first if that fails."""
    command = ["apt-get", "install", "-y", "-q", *packages]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log(f"apt-get install {' '.join(packages)}")
    if subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=False).returncode == 0:
        return
    log("apt-get update")
    subprocess.run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL, check=True)
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=True)


def ensure_wrk() -> None:
    if shutil.which("wrk") is None:
        apt_install("wrk")


def venv_has(module: str) -> bool:
    python = VENV_BIN / "python"
    if not python.exists():
        return False
    check = subprocess.run([python, "-c", f"import {module}"], capture_output=True, check=False)
    return check.returncode == 0


def pip(*args: str, log_name: str) -> bool:
    """Run pip in the venv with its output in a log file; on failure show the log's tail."""
    LOGS.mkdir(parents=True, exist_ok=True)
    log_path = LOGS / log_name
    with open(log_path, "w") as out:
        command = [VENV_BIN / "python", "-m", "pip", "install", "--disable-pip-version-check"]
        result = subprocess.run(
            [*command, *args], stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        tail = log_path.read_text(errors="replace").splitlines()[-15:]
        log(f"pip install {' '.join(args)} failed; the end of {log_path}:")
        for line in tail:
            print(f"    {line}", file=sys.stderr)
    return result.returncode == 0


def install(projects: set[str]) -> dict[str, str]:
    """Create or reuse the venv and install what the selected servers need.

    Returns {project: reason} for the projects that could not be installed.
    """
    failures = {}
    if not (VENV_BIN / "python").exists():
        log(f"creating the venv {VENV}")
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    if "bjoern" in projects and not venv_has("bjoern"):
        if not Path("/usr/include/ev.h").exists():
            apt_install("libev-dev")
        log("pip install bjoern")
        if not pip("bjoern", log_name="bjoern.log"):
            failures["bjoern"] = f"install failed, see {LOGS / 'bjoern.log'}"
    if "evserver" in projects:
        log(f"pip install {REPO} (builds the Rust engine in release mode; may take minutes)")
        if not pip("--force-reinstall", "--no-deps", str(REPO), log_name="evserver.log"):
            failures["evserver"] = f"install failed, see {LOGS / 'evserver.log'}"
    return failures


# --- versions and machine ------------------------------------------------------------------


def package_version(name: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({name!r}))"
    try:
        result = subprocess.run(
            [VENV_BIN / "python", "-c", code], capture_output=True, text=True, check=False
        )
    except OSError:
        return "not installed"
    return result.stdout.strip() if result.returncode == 0 else "not installed"


def venv_python_version() -> str:
    """The version of the Python the servers run on (the venv's), else this one's."""
    try:
        result = subprocess.run(
            [VENV_BIN / "python", "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            check=False,
            text=True,
        )
    except OSError:
        return platform.python_version()
    return result.stdout.strip() or platform.python_version()


def wrk_version() -> str:
    result = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    match = re.search(r"wrk (\S+)", result.stdout + result.stderr)
    return match.group(1) if match else "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
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
    ppid = int(fields[1])
    ticks = sum(int(value) for value in fields[11:15])
    return ppid, ticks


def tree_cpu_seconds(root: int) -> float:
    """CPU time used so far by ROOT and every living descendant of it, in seconds.

    A descendant that has exited is counted through its parent's cutime/cstime once it has
    been waited for, so nothing is counted twice."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = read_stat(int(entry))
            if stat is not None:
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


# --- one server, one round -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(name: str, port: int) -> list[str]:
    project, backend = SERVERS[name]
    if project == "evserver":
        return [
            str(VENV_BIN / "evserver"),
            "hello:application",
            "-l",
            f"127.0.0.1:{port}",
            "--backend",
            backend,
        ]  # one worker: evserver's only mode until pre-forking lands
    return [str(VENV_BIN / "python"), "run_bjoern.py", str(port)]


def probe(port: int) -> str | None:
    """One GET /: None if the answer is the expected one, else what went wrong."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as error:
        return f"no answer ({error.__class__.__name__})"
    finally:
        connection.close()
    if response.status != 200 or body != EXPECTED_BODY:
        return f"wrong answer: {response.status} {body[:40]!r}"
    return None


def wait_ready(process: subprocess.Popen, port: int, timeout: float) -> str | None:
    """Poll until the server answers correctly: None when it does, else the reason."""
    deadline = time.monotonic() + timeout
    problem = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"exited with status {process.returncode}"
        problem = probe(port)
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
    # A worker that outlived its parent would still be in the group.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip()[:120] if lines else ""


def parse_wrk(output: str) -> dict:
    match = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h),", output)
    if not match:
        raise ValueError(f"cannot read wrk's output:\n{output}")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(3)]
    result = {
        "requests": int(match.group(1)),
        "seconds": float(match.group(2)) * scale,
        "errors": 0,
        "non_2xx": 0,
    }
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if errors:
        result["errors"] = sum(int(value) for value in errors.groups())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        result["non_2xx"] = int(non_2xx.group(1))
    return result


def run_wrk(args: argparse.Namespace, port: int, seconds: float) -> tuple[dict, float]:
    """Run wrk against the server; return its parsed figures and wrk's own CPU seconds."""
    command = ["taskset", "-c", args.wrk_cpu, "wrk", f"-t{args.threads}", f"-c{args.connections}"]
    command += [f"-d{seconds:g}s", f"http://127.0.0.1:{port}/"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr.strip()}")
    wrk_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return parse_wrk(result.stdout), wrk_cpu


def run_round(name: str, args: argparse.Namespace) -> dict:
    """Start NAME, warm it up, measure one wrk run. Returns figures or {'failed': reason}."""
    port = free_port()
    LOGS.mkdir(parents=True, exist_ok=True)
    stderr_path = LOGS / f"{name}.stderr"
    command = ["taskset", "-c", args.server_cpu, *server_command(name, port)]
    if not Path(command[3]).exists():
        return {"failed": f"{command[3]} not found"}
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            command,
            cwd=APPS,
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        problem = wait_ready(process, port, args.start_timeout)
        if problem is not None:
            detail = last_line(stderr_path)
            return {"failed": f"{problem}: {detail}" if detail else problem}
        if args.warmup > 0:
            run_wrk(args, port, args.warmup)
        cpu_before = tree_cpu_seconds(process.pid)
        figures, wrk_cpu = run_wrk(args, port, args.duration)
        cpu_after = tree_cpu_seconds(process.pid)
        if process.poll() is not None:
            return {"failed": f"exited during the run with status {process.returncode}"}
        problem = probe(port)
        if problem is not None:
            return {"failed": f"after the run: {problem}"}
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as error:
        return {"failed": str(error).splitlines()[0]}
    finally:
        stop(process)
    requests, seconds = figures["requests"], figures["seconds"]
    server_cpu = cpu_after - cpu_before
    return {
        "requests": requests,
        "seconds": seconds,
        "req_per_s": requests / seconds,
        "server_cpu_s": server_cpu,
        "cpu_us_per_req": server_cpu * 1e6 / requests if requests else None,
        "server_cpu_pct": 100 * server_cpu / seconds,
        "wrk_cpu_pct": 100 * wrk_cpu / seconds,
        "socket_errors": figures["errors"],
        "non_2xx": figures["non_2xx"],
    }


# --- report --------------------------------------------------------------------------------


def summarize(name: str, rounds: list[dict]) -> dict:
    project, backend = SERVERS[name]
    good = [r for r in rounds if "failed" not in r]
    summary: dict = {"server": project, "backend": backend, "rounds": rounds}
    if not good:
        summary["failed"] = rounds[-1]["failed"] if rounds else "not run"
        return summary
    for key in ("req_per_s", "cpu_us_per_req", "server_cpu_pct", "wrk_cpu_pct"):
        summary[key] = statistics.median(r[key] for r in good)
    summary["socket_errors"] = sum(r["socket_errors"] for r in good)
    summary["non_2xx"] = sum(r["non_2xx"] for r in good)
    return summary


def ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}" if value and base else "—"


def markdown(header: dict, results: dict[str, dict]) -> str:
    lines = [
        "# evserver hello-world benchmark",
        "",
        f"- date: {header['date']}",
        f"- kernel: {header['kernel']}",
        f"- CPU: {header['cpu']} ({header['cpus']} CPUs)",
        f"- Python: {header['python']}",
        f"- evserver {header['evserver']}, bjoern {header['bjoern']}, wrk {header['wrk']}",
        f"- method: {header['method']}",
        "",
        (
            "| server | backend | req/s | CPU µs/req | CPU/req vs bjoern | req/s vs bjoern "
            "| server CPU % | wrk CPU % |"
        ),
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    base = results.get(BASELINE, {})
    notes = []
    for name, s in results.items():
        if "failed" in s:
            reason = s["failed"].replace("|", "\\|")
            lines.append(f"| {s['server']} | {s['backend']} | failed: {reason} | | | | | |")
            continue
        lines.append(
            f"| {s['server']} | {s['backend']} | {s['req_per_s']:,.0f} "
            f"| {s['cpu_us_per_req']:.2f} "
            f"| {ratio(s['cpu_us_per_req'], base.get('cpu_us_per_req'))} "
            f"| {ratio(s['req_per_s'], base.get('req_per_s'))} "
            f"| {s['server_cpu_pct']:.0f} | {s['wrk_cpu_pct']:.0f} |"
        )
        per_round = ", ".join(
            f"{r['req_per_s']:,.0f} req/s {r['cpu_us_per_req']:.2f} µs"
            if "failed" not in r
            else "failed"
            for r in s["rounds"]
        )
        notes.append(f"- {name} rounds: {per_round}")
        if s["socket_errors"] or s["non_2xx"]:
            notes.append(
                f"- {name}: {s['socket_errors']} socket errors, "
                f"{s['non_2xx']} non-2xx responses (figures suspect)"
            )
    return "\n".join([*lines, "", *notes])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help=f"comma-separated subset of: {', '.join(SERVERS)} (default: all)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (default 3)")
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run (10)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warmup (2; 0: none)")
    parser.add_argument("--connections", type=int, default=50, help="wrk -c (default 50)")
    parser.add_argument("--threads", type=int, default=1, help="wrk -t (default 1)")
    parser.add_argument("--server-cpu", default="0", help="taskset CPU list of the server (0)")
    parser.add_argument("--wrk-cpu", default="1", help="taskset CPU list of wrk (1)")
    parser.add_argument("--start-timeout", type=float, default=20, help="seconds to wait (20)")
    parser.add_argument("--no-install", action="store_true", help="skip the venv/pip/apt step")
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE")
    args = parser.parse_args()
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = [s for s in args.servers if s not in SERVERS]
    if unknown or not args.servers:
        parser.error(f"unknown server {unknown}; choose from {', '.join(SERVERS)}")
    if args.rounds < 1 or args.duration <= 0:
        parser.error("--rounds must be at least 1 and --duration positive")
    return args


def main() -> int:
    args = parse_args()
    if sys.platform != "linux":
        log("this benchmark reads /proc and uses taskset: Linux only")
        return 2
    projects = {SERVERS[name][0] for name in args.servers}
    install_failures: dict[str, str] = {}
    if not args.no_install:
        ensure_wrk()
        install_failures = install(projects)
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        log("wrk and taskset are needed (apt-get install wrk util-linux)")
        return 2

    rounds: dict[str, list[dict]] = {name: [] for name in args.servers}
    failed: dict[str, str] = {
        name: install_failures[SERVERS[name][0]]
        for name in args.servers
        if SERVERS[name][0] in install_failures
    }
    for number in range(args.rounds):
        # Rotate the order each round so no server always runs first or last.
        shift = number % len(args.servers)
        for name in args.servers[shift:] + args.servers[:shift]:
            if name in failed:
                continue
            log(f"round {number + 1}/{args.rounds}: {name}")
            result = run_round(name, args)
            rounds[name].append(result)
            if "failed" in result:
                log(f"{name} failed: {result['failed']} (skipped from now on)")
                failed[name] = result["failed"]
    results = {}
    for name in args.servers:
        if not rounds[name] and name in failed:
            rounds[name] = [{"failed": failed[name]}]
        results[name] = summarize(name, rounds[name])

    header = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "kernel": platform.release(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "python": venv_python_version(),
        "evserver": package_version("evserver"),
        "bjoern": package_version("bjoern"),
        "wrk": wrk_version(),
        "method": (
            f"one worker per server pinned to CPU {args.server_cpu}, "
            f"`wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s` pinned to CPU "
            f"{args.wrk_cpu} after a {args.warmup:g} s warmup; server CPU = utime+stime of its "
            f"process tree from /proc; median of {args.rounds} alternating rounds"
        ),
    }
    print(markdown(header, results))
    if args.json:
        Path(args.json).write_text(json.dumps({"header": header, "results": results}, indent=2))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
