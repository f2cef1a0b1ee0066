"""Helpers for tests that run py-mdr in other processes (exits, kills, forks, servers)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def child_env(**env: str) -> dict[str, str]:
    """This environment without MDR_* settings, this checkout importable, plus ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MDR_")}
    paths = [p for p in (clean.get("PYTHONPATH"), str(ROOT)) if p]
    clean.update(env, PYTHONPATH=os.pathsep.join(paths))
    return clean


def run_child(code: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (see :func:`child_env`); never raises on exit codes."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(**env),
        cwd=ROOT,
        check=False,
    )


def run_script(
    path: Path, *args: str, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run a script file (what multiprocessing's spawn and forkserver need: an importable main)."""
    return subprocess.run(
        [sys.executable, str(path), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(**env),
        cwd=ROOT,
        check=False,
    )


def start_child(code: str, **env: str) -> subprocess.Popen[str]:
    """Like :func:`run_child`, but running on while the test watches it."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(**env),
        cwd=ROOT,
    )


def closed_port_url() -> str:
    """A loopback URL where nothing listens (connections are refused at once)."""
    return f"http://127.0.0.1:{free_port()}"


def free_port() -> int:
    """A loopback port nothing listens on (until someone binds it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def last_json(output: str) -> dict[str, Any]:
    """The last line of ``output`` that is a JSON object."""
    lines = [line for line in output.splitlines() if line.startswith("{")]
    assert lines, output
    result: dict[str, Any] = json.loads(lines[-1])
    return result
