"""Slow, idle and vanishing clients against a real server process, measured from the outside:
the server's RSS and open file descriptors come from /proc/PID/."""

from __future__ import annotations

import os
import resource
import socket
import statistics
import struct
import sys
import time
from pathlib import Path

import pytest
from support import assert_serves, request

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")

# Starts evserver with a low soft limit on open files (and a higher hard one).
LOW_SOFT_LIMIT = [
    sys.executable,
    "-c",
    "import os, resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (256, "
    "resource.getrlimit(resource.RLIMIT_NOFILE)[1])); "
    "os.execv(sys.executable, [sys.executable, '-m', 'evserver', *sys.argv[1:]])",
]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def soft_nofile(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard) if hard != "unlimited" else -1
    raise AssertionError("no open files limit")


def test_the_server_raises_its_open_files_limit_to_the_hard_limit(serve):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard <= 256:
        pytest.skip(f"the hard limit ({hard}) leaves nothing to raise")
    server = serve("clientapp:application", command=LOW_SOFT_LIMIT)
    soft, server_hard = soft_nofile(server.pid)
    assert soft > 256, "the soft limit was left as the server was started with"
    assert soft == server_hard or hard == resource.RLIM_INFINITY
    assert_serves(server)
