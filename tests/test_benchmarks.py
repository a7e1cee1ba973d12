"""The benchmark tools against a real evserver: every workload of benchmarks/compare is
answered correctly (the check compare makes before measuring), pipelining is detected, and the
instruction-count client reads every answer, on both backends."""

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import compare  # benchmarks/ is not a package: imported from its folder
import instructions


@pytest.fixture(scope="module")
def server(module_serve):
    return module_serve("workloads:application", cwd=BENCHMARKS / "apps")


@pytest.mark.parametrize("workload", list(compare.WORKLOADS))
def test_compare_probe_accepts_evservers_answer(server, workload):
    assert compare.probe(server.port, compare.WORKLOADS[workload]) is None


def test_evserver_answers_pipelined_requests(server):
    assert compare.pipelines(server.port, compare.WORKLOADS["pipeline"])


@pytest.mark.parametrize("workload", list(compare.WORKLOADS))
def test_instruction_client_reads_every_answer(server, workload):
    client = instructions.Client(server.port, compare.WORKLOADS[workload])
    client.send(40)
    client.close()


def test_probe_reports_a_wrong_answer(server):
    wrong = compare.Workload("wrong", "wrong", "/", b"Goodbye")
    assert "wrong answer" in compare.probe(server.port, wrong)


def test_wrk_script_sends_the_workload(tmp_path, monkeypatch):
    monkeypatch.setattr(compare, "LOGS", tmp_path)
    post = compare.Wrk.script(compare.WORKLOADS["post-1k"]).read_text()
    assert 'wrk.method = "POST"' in post and 'string.rep("p", 1024)' in post
    pipeline = compare.Wrk.script(compare.WORKLOADS["pipeline"]).read_text()
    assert f"for i = 1, {compare.PIPELINE_DEPTH}" in pipeline


@pytest.mark.parametrize("script", ["bench_vs_wrk", "soak"])
def test_every_benchmark_script_imports(script):
    """A script that no longer imports (a helper it took from a removed script) fails here,
    not on the quiet machine it was meant to run on."""
    import importlib

    module = importlib.import_module(script)
    assert callable(module.main)


def test_websocket_benchmark_runs_against_evserver():
    """benchmarks/websocket/measure.py end to end on a small scale (the peers are left out:
    their venv is built only on a benchmark machine)."""
    import subprocess

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "websocket" / "measure.py"
    result = subprocess.run(
        [sys.executable, str(script), "--clients", "200", "--duration", "2", "--echo-rate",
         "200", "--servers", "evserver-io_uring,evserver-poll,evserver-send-loop", "--no-install"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    header = [
        c.strip() for c in next(line for line in lines if line.startswith("| server")).split("|")
    ]
    rows = [line for line in lines if line.startswith("| evserver-")]
    names = ["evserver-io_uring", "evserver-poll", "evserver-send-loop"]
    assert [r.split("|")[1].strip() for r in rows] == names
    for row in rows:
        cells = dict(zip(header, (c.strip() for c in row.split("|"))))
        assert cells["lost"] == "0", row  # nothing lost


def test_websocket_benchmark_takes_the_median_of_its_rounds():
    import argparse
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "ws_measure", BENCHMARKS / "websocket" / "measure.py"
    )
    measure = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(measure)
    keys = ["kb_per_ws", "kb_per_ws_total", "broadcast_last_p50_ms", "broadcast_last_max_ms"]
    keys += ["delivery_p99_ms", "broadcast_lost", "echo_p50_us", "echo_p99_us"]
    keys += ["echo_per_sec", "echo_lost", "echo_cpu_us"]
    rounds = [
        {"server": "evserver-io_uring", **dict.fromkeys(keys, 1.0), "broadcast_last_p50_ms": t}
        for t in (30.0, 45.0, 31.0)
    ]
    row = measure.median_row(rounds)
    assert row["broadcast_last_p50_ms"] == 31.0
    assert row["broadcast_rounds"] == [30.0, 45.0, 31.0]
    args = argparse.Namespace(server_cpu=0, client_cpu=1, clients=10, duration=1, echo_rate=1)
    args.rounds = 3
    text = measure.table([row], args)
    assert "medians of 3 rounds" in text
    assert "- evserver-io_uring: 30.0, 45.0, 31.0" in text


@pytest.mark.parametrize("server", ["evserver-io_uring", "evserver-poll"])
def test_instructions_builds_the_server_command_compare_defines(server):
    # compare.py's commands read options instructions.py must set (a missing one crashed it).
    command = compare.SERVERS[server].command(instructions.parse_args([]), 8080)
    assert "--threads" not in command and "--certfile" not in command
    assert "127.0.0.1:8080" in command
