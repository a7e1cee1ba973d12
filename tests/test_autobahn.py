"""Autobahn|Testsuite, the reference WebSocket conformance suite, against the echo endpoint of
tests/apps/wsapp.py: sections 1-10 and sub-cases 1-6 and 11 of sections 12 and 13
(permessage-deflate), each case ending OK, NON-STRICT or INFORMATIONAL. Both backends, inline
and thread mode.

The suite (``autobahntestsuite==0.8.2``) runs on Python 2.7: .ci/run installs it with pyenv's
2.7.18 (``pip install --user``), which puts ``wstest`` in ~/.local/bin. Without it the test
skips, except under CI, where it fails. Its report goes to a temporary directory.

The full suite (every sub-case of 12 and 13, about 15 minutes per run with its Python 2
client) runs with ``EVSERVER_AUTOBAHN_FULL=1``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support import Server

BOTH_MODES = True
PASSING = {"OK", "NON-STRICT", "INFORMATIONAL"}


def wstest() -> str | None:
    found = shutil.which("wstest") or str(Path.home() / ".local" / "bin" / "wstest")
    return found if Path(found).exists() else None


def cases() -> list[str]:
    if os.environ.get("EVSERVER_AUTOBAHN_FULL"):
        return ["*"]
    picked = [f"{n}.*" for n in range(1, 11)]
    for section, subsections in ((12, 5), (13, 7)):
        for sub in range(1, subsections + 1):
            picked += [f"{section}.{sub}.{case}" for case in (1, 2, 3, 4, 5, 6, 11)]
    return picked


@pytest.fixture(scope="module")
def server(module_serve) -> Server:
    return module_serve("wsapp")


def test_autobahn_fuzzingclient(server, tmp_path):
    program = wstest()
    if program is None:
        if os.environ.get("CI"):
            pytest.fail("wstest is missing: .ci/run installs autobahntestsuite with Python 2.7")
        pytest.skip("wstest (autobahntestsuite 0.8.2 on Python 2.7) is not installed")
    spec = {
        "outdir": str(tmp_path / "report"),
        "servers": [{"agent": "evserver", "url": f"ws://{server.address.netloc}/echo"}],
        "cases": cases(),
        "exclude-cases": [],
        "exclude-agent-cases": {},
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = dict(os.environ, PYENV_VERSION="2.7.18")
    run = subprocess.run(
        [program, "-m", "fuzzingclient", "-s", str(tmp_path / "spec.json")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    index = tmp_path / "report" / "index.json"
    assert index.exists(), f"wstest wrote no report (status {run.returncode}): {run.stderr[-2000:]}"
    results = json.loads(index.read_text())["evserver"]
    assert len(results) > 300, f"only {len(results)} cases ran"
    failed = {
        case: (r["behavior"], r["behaviorClose"])
        for case, r in results.items()
        if r["behavior"] not in PASSING or r["behaviorClose"] not in PASSING
    }
    assert not failed, f"{len(failed)} of {len(results)} cases failed: {sorted(failed.items())}"
