# An ordinary application: it only uses the standard logging module and knows nothing of MDR or
# OpenTelemetry. Auto-instrumentation ships its log lines to MDR without a code change:
#
#   pip install 'py-mdr[otel-auto]'
#   export MDR_HOST=hec.example.com:8088 MDR_TOKEN=...
#   OTEL_LOGS_EXPORTER=mdr OTEL_SERVICE_NAME=orders \
#   OTEL_TRACES_EXPORTER=none OTEL_METRICS_EXPORTER=none OTEL_PYTHON_LOG_CODE_ATTRIBUTES=true \
#   opentelemetry-instrument python examples/otel_auto_app.py
#
# The logging instrumentation puts OpenTelemetry's handler on the root logger by itself; leave
# OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED unset (true selects the SDK's deprecated one).
#
# To try it locally, start a receiver in another shell (`python -m py_mdr.sink --port 8088
# --token T`) and use MDR_HOST=http://127.0.0.1:8088 MDR_TOKEN=T.
"""A small order service that logs a start line, a warning and a failed payment."""

from __future__ import annotations

import logging

log = logging.getLogger("orders")


def charge(order: str, cents: int) -> None:
    if cents <= 0:
        raise ValueError(f"cannot charge {cents} cents for {order}")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    log.info("order service starting")
    log.warning("stock is low for %s", "sku-42")
    try:
        charge("order-7", 0)
    except ValueError:
        log.exception("payment failed for %s", "order-7")


if __name__ == "__main__":
    main()
