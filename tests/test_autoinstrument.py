"""``OTEL_LOGS_EXPORTER=mdr opentelemetry-instrument``: unchanged scripts ship their logs to MDR.

Each test runs the venv's ``opentelemetry-instrument`` in a subprocess against the real receiver
on loopback, so the entry point, the no-argument construction from the environment and the
SDK's own pipeline are all exercised as a user would run them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from py_mdr import config
from py_mdr.sink import HECSink

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
INSTRUMENT = BIN / "opentelemetry-instrument"
APP = ROOT / "examples" / "otel_auto_app.py"

pytestmark = pytest.mark.skipif(
    not INSTRUMENT.exists(), reason="opentelemetry-instrument is not installed"
)


@pytest.fixture(autouse=True, scope="module")
def configurator_installed() -> None:
    """Without a configurator (opentelemetry-distro) the command sets nothing up: say so plainly."""
    assert list(entry_points(group="opentelemetry_configurator")), (
        "opentelemetry-instrument needs an OpenTelemetry configurator to build the SDK from "
        "OTEL_* variables: install opentelemetry-distro"
    )


def otel_env(sink: HECSink | None, *, sdk_handler: bool = True, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OTEL_") and k not in {s.name for s in config.SETTINGS}
    }
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "OTEL_LOGS_EXPORTER": "mdr",
            "OTEL_SERVICE_NAME": "orders",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
        }
    )
    if sdk_handler:
        env["OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED"] = "true"
    if sink is not None:
        env.update({"MDR_HOST": sink.url, "MDR_TOKEN": sink.token})
    env.update(extra)
    return env


def instrumented(script: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INSTRUMENT), sys.executable, str(script)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "sdk_handler", [True, False], ids=["sdk-logging-handler", "instrumentation-logging-handler"]
)
def test_unchanged_app_ships_its_warning_and_exception(sink: HECSink, sdk_handler: bool) -> None:
    result = instrumented(APP, otel_env(sink, sdk_handler=sdk_handler))
    assert result.returncode == 0, result.stderr
    assert "stock is low for sku-42" in result.stderr  # the app's own console output is intact

    events = [e for e in sink.events if e.get("log_name") == "orders"]
    by_message = {e["message"]: e for e in events}
    assert set(by_message) == {
        "order service starting",
        "stock is low for sku-42",
        "payment failed for order-7",
    }
    warning = by_message["stock is low for sku-42"]
    assert (warning["severity_id"], warning["metadata"]["log_level"]) == (3, "WARN")
    failure = by_message["payment failed for order-7"]
    assert failure["severity_id"] == 4
    exception = failure["unmapped"]["exception"]
    assert exception["type"] == "ValueError"
    assert exception["message"] == "cannot charge 0 cents for order-7"
    assert exception["stacktrace"].startswith("Traceback (most recent call last):")
    assert "in charge\n    raise ValueError" in exception["stacktrace"]
    for event in events:
        assert event["metadata"]["product"]["name"] == "orders"
    assert {v["sourcetype"] for v in sink.envelopes} == {"pymdr::orders"}
    assert sink.problems == []


DEBUG_APP = textwrap.dedent("""
    import logging, time
    logging.getLogger().setLevel(logging.DEBUG)
    logging.getLogger("urllib3").setLevel(logging.DEBUG)
    logging.getLogger("py_mdr").setLevel(logging.DEBUG)
    logging.getLogger("chatty").info("the only line")
    time.sleep(1.0)
""")


def test_root_logger_at_debug_under_auto_instrumentation_stays_bounded(
    sink: HECSink, tmp_path: Path
) -> None:
    script = tmp_path / "debug_app.py"
    script.write_text(DEBUG_APP)
    sink.fail_next(1, status=503)
    env = otel_env(sink, sdk_handler=False, OTEL_BLRP_SCHEDULE_DELAY="20", MDR_EXPORT_TIMEOUT="5")
    result = instrumented(script, env)
    assert result.returncode == 0, result.stderr
    # about 50 export rounds ran while the HTTP stack logged at DEBUG: one line, the 503 and
    # its retry, nothing more
    assert [e["message"] for e in sink.events if e.get("log_name") == "chatty"] == ["the only line"]
    assert all(
        not str(e.get("log_name", "")).startswith(("urllib3", "py_mdr")) for e in sink.events
    )
    assert [r.status for r in sink.requests] == [503, 200]


def test_missing_configuration_is_reported_and_the_app_still_runs() -> None:
    result = instrumented(APP, otel_env(None))
    assert result.returncode == 0
    assert "payment failed for order-7" in result.stderr
    assert "MDR_HOST" in result.stderr and "MDR_TOKEN" in result.stderr


FLUSHING_APP = textwrap.dedent("""
    import logging, os
    from opentelemetry._logs import get_logger_provider
    logging.getLogger().setLevel(logging.INFO)
    for n in range(3000):
        logging.getLogger("flushed").info("line %d", n)
    print(get_logger_provider().force_flush(), flush=True)
    os._exit(0)  # a forked worker's or a serverless handler's end: no exit handlers run
""")


def test_the_providers_force_flush_delivers_under_auto_instrumentation(
    sink: HECSink, tmp_path: Path
) -> None:
    script = tmp_path / "flushing_app.py"
    script.write_text(FLUSHING_APP)
    result = instrumented(script, otel_env(sink))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
    lines = [e["message"] for e in sink.events if e.get("log_name") == "flushed"]
    assert sorted(lines) == sorted(f"line {n}" for n in range(3000))
