"""The README's OpenTelemetry snippet and command, and the OTel examples, run as written.

Each runs in a subprocess under ``python -W error`` (any deprecation is an error) against the
real receiver on loopback; the imports they make must all come with ``py-mdr[otel]``.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from py_mdr import config
from py_mdr.sink import HECSink

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
OWN_MODULES = {"py_mdr", "py_mdr_otel"}


def readme_block(language: str, marker: str) -> str:
    """The README's first fenced ``language`` block containing ``marker``."""
    for block in re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL):
        if marker in block:
            return str(block)
    raise AssertionError(f"no {language} block with {marker!r} in the README")


OTEL_SNIPPET = readme_block("python", "from py_mdr_otel import MDRExporter\n\nexporter")
AUTO_COMMAND = readme_block("sh", "OTEL_LOGS_EXPORTER=mdr OTEL_SERVICE_NAME=billing")


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any MDR_* or OTEL_* setting, plus ``extra``."""
    names = {s.name for s in config.SETTINGS}
    env = {k: v for k, v in os.environ.items() if k not in names and not k.startswith("OTEL_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_readme_snippet_delivers_a_record_under_w_error(sink: HECSink, tmp_path: Path) -> None:
    code = OTEL_SNIPPET.replace('"route.to.hec.endpoint:8088"', repr(sink.url))
    code = code.replace('"A-VALID-TOKEN"', repr(sink.token))
    assert code != OTEL_SNIPPET
    script = tmp_path / "snippet.py"
    script.write_text(code, encoding="utf-8")
    result = run([sys.executable, "-W", "error", str(script)], clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    (event,) = sink.events
    assert event["message"] == "card ****1234 declined"
    assert event["severity_id"] == 3
    assert event["unmapped"]["extra"] == {"order": 42}
    assert event["metadata"]["product"]["name"] == "billing"
    assert sink.problems == []


def test_otel_manual_example_delivers_under_w_error(sink: HECSink) -> None:
    env = clean_env(MDR_HOST=sink.url, MDR_TOKEN=sink.token)
    result = run([sys.executable, "-W", "error", str(EXAMPLES / "otel_manual.py")], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "exported 3, sent 3, dropped {}" in result.stdout
    events = {e["message"]: e for e in sink.events}
    assert list(events) == ["order service starting", "payment provider is slow", "unknown order"]
    slow = events["payment provider is slow"]
    assert slow["unmapped"]["extra"] == {"order_id": "order-7", "latency_ms": 2300}
    assert len(slow["metadata"]["correlation_uid"]) == 32  # logged inside a span
    assert events["unknown order"]["unmapped"]["exception"]["type"] == "KeyError"
    assert events["unknown order"]["enrichments"][0]["data"]["function_name"] == "log_some_lines"
    assert sink.problems == []


# --- what the otel extra installs -------------------------------------------------------------


def extra_closure(distribution: str, extra: str) -> set[str]:
    """Every distribution that ``pip install "<distribution>[<extra>]"`` installs."""
    found: set[str] = set()
    todo: list[tuple[str, frozenset[str]]] = [(distribution, frozenset({extra}))]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        key = (str(canonicalize_name(name)), extras)
        if key in seen:
            continue
        seen.add(key)
        found.add(key[0])
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in {"", *extras}):
                todo.append((requirement.name, frozenset(requirement.extras)))
    return found


def imported_modules(code: str) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
    return modules


def providers(module: str) -> set[str]:
    """The installed distributions that ship ``module``'s file."""
    path = module.replace(".", "/")
    wanted = {f"{path}.py", f"{path}/__init__.py"}
    return {
        str(canonicalize_name(dist.metadata["Name"]))
        for dist in metadata.distributions()
        if any(str(file) in wanted for file in dist.files or ())
    }


def test_every_import_of_the_snippet_and_the_otel_examples_comes_with_the_otel_extra() -> None:
    closure = extra_closure("py-mdr", "otel")
    assert "opentelemetry-instrumentation-logging" in closure
    sources = {
        "README snippet": OTEL_SNIPPET,
        "otel_manual.py": (EXAMPLES / "otel_manual.py").read_text(encoding="utf-8"),
        "_endpoint.py": (EXAMPLES / "_endpoint.py").read_text(encoding="utf-8"),
    }
    missing = []
    for source, code in sources.items():
        for module in sorted(imported_modules(code)):
            top = module.partition(".")[0]
            if top in sys.stdlib_module_names or top in OWN_MODULES:
                continue
            if (EXAMPLES / f"{top}.py").exists():  # the examples' own helper
                continue
            if not providers(module) & closure:
                missing.append(f"{source}: {module} (from {sorted(providers(module))})")
    assert missing == []


# --- the auto-instrumentation command -----------------------------------------------------------


def readme_command(sink: HECSink, app: Path) -> tuple[list[str], dict[str, str]]:
    """The README's command as a shell would run it, with the receiver's host and token."""
    words = shlex.split(AUTO_COMMAND.replace("\\\n", " "))
    assignments = {}
    while "=" in words[0]:
        name, _, value = words.pop(0).partition("=")
        assignments[name] = value
    assert words == ["opentelemetry-instrument", "python", "app.py"]
    assert {"MDR_HOST", "MDR_TOKEN"} <= set(assignments)
    assignments.update(MDR_HOST=sink.url, MDR_TOKEN=sink.token)
    command = [str(BIN / "opentelemetry-instrument"), sys.executable, str(app)]
    return command, clean_env(**assignments)


def test_readme_auto_instrumentation_command_ships_the_app_and_nothing_of_opentelemetry(
    sink: HECSink,
) -> None:
    command, env = readme_command(sink, EXAMPLES / "otel_auto_app.py")
    result = run(command, env)
    assert result.returncode == 0, result.stderr
    assert "stock is low for sku-42" in result.stderr  # the app's own console output
    assert "Skipping installation of LoggingHandler" not in result.stderr
    messages = [e["message"] for e in sink.events]
    assert messages == [
        "order service starting",
        "stock is low for sku-42",
        "payment failed for order-7",
    ]
    assert {e["log_name"] for e in sink.events} == {"orders"}
    failed = sink.events[2]
    assert failed["unmapped"]["exception"]["type"] == "ValueError"
    assert failed["enrichments"][0]["data"]["function_name"] == "main"
    assert sink.problems == []


def test_opentelemetry_warnings_never_reach_mdr_even_with_the_old_variable(
    sink: HECSink,
) -> None:
    """The earlier README set the SDK handler's variable: OpenTelemetry then logs a warning
    ("Skipping installation of LoggingHandler ...") at each start, before the application has
    a console handler, so the SDK's handler on the root logger is its only way out."""
    command, env = readme_command(sink, EXAMPLES / "otel_auto_app.py")
    env["OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED"] = "true"
    env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"  # the SDK handler's, not ours
    result = run(command, env)
    assert result.returncode == 0, result.stderr
    assert {e["log_name"] for e in sink.events} == {"orders"}
    assert len(sink.events) == 3
