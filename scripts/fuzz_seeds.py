"""Regenerates the fuzzers' seed corpus (fuzz/corpus/TARGET/) from the codec's request fixtures.

Each seed starts with the control byte the target reads first (0: default limits, one read),
followed by a fixture's raw bytes; the chunked target gets the bodies of the chunked fixtures.
Run: python3 scripts/fuzz_seeds.py
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
sys.path.insert(0, str(ROOT / "tests"))
from http_fixtures import REQUESTS, read_request


def fixtures() -> list[bytes]:
    return [read_request(p) for p in sorted(REQUESTS.glob("*/*.http"))]


def chunked_body(raw: bytes) -> bytes | None:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if sep and re.search(rb"(?i)transfer-encoding:[^\r\n]*chunked", head):
        return body
    return None


def write(target: str, seeds: list[bytes]) -> None:
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for seed in seeds:
        (folder / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    print(f"{folder.relative_to(ROOT)}: {len(set(seeds))} seeds")


def main() -> None:
    raws = fixtures()
    write("parse_head", [b"\0" + r for r in raws])
    write("framing", [b"\0" + r for r in raws])
    bodies = [b for b in (chunked_body(r) for r in raws) if b is not None]
    write("chunked", [b"\0" + b for b in bodies] + [b"\x03\x00\x01\x02" + b for b in bodies[:8]])


if __name__ == "__main__":
    main()
