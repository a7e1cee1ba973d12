"""The malformed-request corpus through the real server: every case of tests/data/malformed.txt
and every invalid fixture of the HTTP codec (http/tests/requests/invalid, those that need no
limit other than the server's defaults) is sent alone and pipelined after a valid request. Each
must be answered with its status and a closed connection, and the worker must go on serving.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from http_fixtures import REQUESTS, read_request, unescape
from support import assert_serves

CORPUS = Path(__file__).resolve().parent / "data" / "malformed.txt"
CODEC_INVALID = REQUESTS / "invalid"
GOOD = b"GET /alive HTTP/1.1\r\nHost: test\r\n\r\n"
REPEAT = re.compile(r"\{repeat (\d+):([^{}]*)\}")


@dataclass
class Case:
    name: str
    status: int
    raw: bytes


def expand(text: str) -> str:
    """Expands {repeat N:TEXT}, innermost first."""
    while m := REPEAT.search(text):
        text = text[: m.start()] + m.group(2) * int(m.group(1)) + text[m.end() :]
    return text


def corpus_cases() -> list[Case]:
    cases = []
    blocks = re.split(r"\n\s*\n", CORPUS.read_text())
    for block in blocks:
        lines = [line for line in block.splitlines() if not line.startswith("#")]
        if not lines:
            continue
        status, name = lines[0].split(" ", 1)
        cases.append(Case(name, int(status), unescape(expand("".join(lines[1:])))))
    return cases


def codec_cases() -> list[Case]:
    cases = []
    for expect in sorted(CODEC_INVALID.glob("*.expect")):
        text = expect.read_text()
        if re.search(r"^(limit|method):", text, re.MULTILINE):
            continue  # needs limits of its own, or expects requests served before the error
        status = int(re.search(r"^status: (\d+)", text, re.MULTILINE).group(1))
        raw = read_request(expect.with_suffix(".http"))
        cases.append(Case(f"codec-{expect.stem}", status, raw))
    return cases


CASES = corpus_cases() + codec_cases()


def test_the_corpus_has_at_least_100_cases_of_its_own():
    assert len(corpus_cases()) >= 100
    assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"


@pytest.fixture(scope="module")
def server(module_serve):
    return module_serve("httpapp:application")


def send_and_check(server, raw: bytes, status: int, before: int) -> None:
    """Sends ``raw``; reads ``before`` good answers, then the refusal and the closed end."""
    with server.connect() as conn:
        try:
            conn.send(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before all was read
        for _ in range(before):
            good = conn.response()
            assert (good.status, good.body) == (200, b"alive\n")
        resp = conn.response()
        assert resp.status == status, (
            f"{raw[:120]!r}: {resp.status} {resp.reason} {resp.body[:120]!r}"
        )
        assert "close" in (resp.header("Connection") or "").lower()
        assert conn.is_closed(), "the connection must be closed after a refusal"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_request_alone_is_refused_and_the_worker_serves_on(server, case):
    send_and_check(server, case.raw, case.status, before=0)
    assert_serves(server)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_request_pipelined_after_a_valid_one_is_refused_after_it(server, case):
    send_and_check(server, GOOD + case.raw, case.status, before=1)
    assert_serves(server)


def test_the_worker_survived_the_whole_corpus(server):
    assert server.proc.poll() is None
    assert_serves(server)
    assert "panicked" not in server.stderr
