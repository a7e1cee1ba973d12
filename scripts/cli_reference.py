"""Regenerate the README's command-line reference from the clap definitions.

Usage: ``python scripts/cli_reference.py`` (rewrites README.md) or ``--check`` (exits 1 when the
README is out of date). Needs evserver installed (or ``python/`` on PYTHONPATH with a built
extension).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"(<!-- cli-reference -->\n)(.*?)(<!-- /cli-reference -->)", re.DOTALL)


def rendered() -> str:
    """The reference block as it should stand in the README."""
    from evserver import _evserver

    lines = [line.rstrip() for line in _evserver.cli_help().rstrip().splitlines()]
    return "```text\n" + "\n".join(lines) + "\n```\n"


def main(argv: list[str]) -> int:
    text = README.read_text(encoding="utf-8")
    match = BLOCK.search(text)
    if match is None:
        print("README.md has no <!-- cli-reference --> block", file=sys.stderr)
        return 1
    wanted = rendered()
    if "--check" in argv:
        if match.group(2) != wanted:
            print("README.md's CLI reference is out of date: run scripts/cli_reference.py")
            return 1
        return 0
    README.write_text(text[: match.start(2)] + wanted + text[match.end(2) :], encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
