"""Importing a front door loads what logging needs, not the models, pydantic or the HTTP stack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("py_mdr.ocsf_models", "pydantic", "pydantic_core", "requests", "urllib3", "email.utils")


def _loaded_after(statement: str) -> list[str]:
    code = (
        f"import json, sys\n{statement}\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


@pytest.mark.parametrize(
    "statement",
    [
        "from py_mdr.handler import MDRHandler",
        "from py_mdr import MDRHandler",
        "import py_mdr_otel",
        "from py_mdr_otel import MDRExporter, MDRSpanExporter",
    ],
)
def test_a_front_door_imports_without_models_pydantic_or_requests(statement: str) -> None:
    assert _loaded_after(statement) == []


def test_the_models_and_the_http_stack_load_when_first_needed() -> None:
    statement = (
        "import logging\n"
        "from py_mdr.handler import MDRHandler\n"
        "h = MDRHandler(host='http://127.0.0.1:9', token='t')\n"
        "ready = 'requests' in sys.modules\n"
        "h.map_log_record(logging.makeLogRecord({'msg': 'x'}))\n"
        "assert ready and 'py_mdr.ocsf_models' in sys.modules\n"
        "h.close(0)"
    )
    assert set(_loaded_after(statement)) >= {"requests", "py_mdr.ocsf_models", "pydantic"}
