"""`make demo`: every front door of py-mdr, against a local HEC receiver, and what MDR received.

1. MDRClient sends a Detection Finding (the published README's example, completed) and a dict.
2. MDRHandler ships stdlib logging: levels, an exception, ``extra=`` fields.
3. MDRExporter ships OpenTelemetry logs (when the ``otel`` extra is installed).
4. The ``py-mdr`` command checks a JSON Lines file with ``py-mdr validate``, then sends it
   with ``py-mdr send`` (what any language or shell can do).
Then each received event is printed on one line, with any OCSF validation problem below it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from py_mdr.client import MDRClient
from py_mdr.handler import MDRHandler
from py_mdr.ocsf_models.events.findings.detection_finding import DetectionFinding
from py_mdr.ocsf_models.objects.product import Product
from py_mdr.sink import HECSink

TOKEN = "demo-token"


def send_with_client(url: str) -> None:
    with MDRClient(name="demo-client", host=url, token=TOKEN) as client:
        event = DetectionFinding()
        event.metadata.product.vendor_name = "ACME"
        event.metadata.product.name = "py-mdr demo"
        event.status = "Testing"
        event.comment = "sent by MDRClient"
        event.finding_info.title = "Suspicious login"
        event.finding_info.uid = "finding-1"
        event.severity_id = 3
        client.send(event)
        client.send(
            {
                "class_uid": 1008,
                "message": "a dict is completed as `py-mdr send` completes it",
            }
        )


def log_with_handler(url: str) -> None:
    handler = MDRHandler(
        host=url, token=TOKEN, product=Product(name="py-mdr demo", vendor_name="ACME")
    )
    logger = logging.getLogger("demo.app")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    logger.debug("cache warmed in %d ms", 12)
    logger.info("user %s logged in", "alice", extra={"request_id": "r-1", "tenant": "t-9"})
    logger.warning("disk %s is %d%% full", "/var", 91)
    try:
        1 / 0  # noqa: B018 - an exception to log
    except ZeroDivisionError:
        logger.exception("could not compute the ratio")
    handler.close()
    logger.removeHandler(handler)


def log_with_exporter(url: str) -> None:
    try:
        from opentelemetry.instrumentation.logging.handler import LoggingHandler
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.resources import Resource

        from py_mdr_otel import MDRExporter
    except ImportError:
        print("(OpenTelemetry not installed: pip install 'py-mdr[otel-auto]' to see MDRExporter)")
        return
    resource = Resource.create({"service.name": "demo-service", "service.version": "1.0.0"})
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(BatchLogRecordProcessor(MDRExporter(host=url, token=TOKEN)))
    logger = logging.getLogger("demo.otel")
    logger.propagate = False
    logger.addHandler(LoggingHandler(logger_provider=provider))
    logger.warning("payment provider answered slowly (%s s)", 2.5)
    provider.shutdown()


#: Two events as another program would write them: one complete, one missing what OCSF requires.
COMMAND_EVENTS = [
    {
        "class_uid": 1008,
        "activity_id": 99,
        "severity_id": 1,
        "time": 1_722_513_600_000,
        "message": "backup finished",
        "log_name": "backup",
        "metadata": {"product": {"name": "backup.sh", "vendor_name": "ACME"}},
    },
    {
        "class_uid": 1008,
        "severity_id": 4,
        "message": "disk failing: validate names what is missing",
    },
]


def py_mdr_command() -> list[str]:
    """The ``py-mdr`` command installed beside this Python (``python -m py_mdr`` is the same)."""
    found = shutil.which("py-mdr", path=os.path.dirname(sys.executable))
    return [found] if found else [sys.executable, "-m", "py_mdr"]


def use_the_command(url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDR_")}
    env.update(MDR_HOST=url, MDR_TOKEN=TOKEN)
    with tempfile.TemporaryDirectory() as folder:
        events = Path(folder) / "events.jsonl"
        events.write_text("".join(json.dumps(e) + "\n" for e in COMMAND_EVENTS), "utf-8")
        for arguments in (["validate", str(events)], ["send", "--name", "demo-cli", str(events)]):
            print(f"$ py-mdr {' '.join(arguments[:-1])} events.jsonl")
            done = subprocess.run(
                [*py_mdr_command(), *arguments],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            shown = (done.stdout + done.stderr).replace(str(events), "events.jsonl")
            print(shown.rstrip() + f"\n(exit code {done.returncode})\n")


def main() -> None:
    with HECSink(token=TOKEN) as sink:
        print(f"local HEC receiver on {sink.url}\n")
        send_with_client(sink.url)
        log_with_handler(sink.url)
        log_with_exporter(sink.url)
        use_the_command(sink.url)
        sink.wait_for_events(9, timeout=10)
        print(sink.report())


if __name__ == "__main__":
    main()
