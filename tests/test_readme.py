"""The README's command-line reference is generated from the clap definitions and kept current."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_cli_reference_matches_the_command_line():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "cli_reference.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_reference_names_every_documented_option():
    from evserver import _evserver

    help_text = _evserver.cli_help()
    for option in ("--exec", "--framework", "--listen", "--backend", "--log-level", "--access-log"):
        assert option in help_text
    assert "EVSERVER_BACKEND" in help_text
