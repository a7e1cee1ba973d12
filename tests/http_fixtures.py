"""Reading the HTTP codec's request fixtures (http/tests/requests, format in
http/tests/README.md) from Python: the malformed-request suite and scripts/fuzz_seeds.py."""

from __future__ import annotations

from pathlib import Path

REQUESTS = Path(__file__).resolve().parent.parent / "http" / "tests" / "requests"
ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "0": b"\0", "\\": b"\\"}


def unescape(text: str) -> bytes:
    """The fixture escapes: \\r \\n \\t \\0 \\\\ and \\xHH; everything else as UTF-8."""
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
        elif text[i + 1] == "x":
            out.append(int(text[i + 2 : i + 4], 16))
            i += 4
        else:
            out += ESCAPES[text[i + 1]]
            i += 2
    return bytes(out)


def read_request(path: Path) -> bytes:
    """The raw bytes of a `.http` fixture (its real newlines are dropped)."""
    return unescape(path.read_text().replace("\n", ""))
