"""structlog to MDR: structlog's processors, then ``render_to_mdr``, then ``MDRHandler``.

    pip install "py-mdr[structlog]"
    python examples/structlog_app.py

With ``MDR_HOST`` and ``MDR_TOKEN`` set, the lines go to that HEC endpoint. Without them the
example starts a local receiver (``py_mdr.sink``) and prints what it received, so it runs
anywhere. Each event arrives with its text as ``message``, the level as severity, its
key-value pairs under ``unmapped.extra`` (where stdlib ``extra=`` fields land), the exception
with its stack trace, and structlog's timestamp as ``time``.
"""

from __future__ import annotations

import logging

import structlog
from _endpoint import mdr_endpoint

from py_mdr.handler import MDRHandler
from py_mdr.structlog import render_to_mdr


def configure() -> None:
    """structlog builds the event dict; the stdlib logger (and so MDRHandler) gets the record."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            render_to_mdr,  # last, in place of a renderer
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def charge(order_id: str, cents: int) -> None:
    if cents <= 0:
        raise ValueError(f"cannot charge {cents} cents for {order_id}")


def main() -> int:
    with mdr_endpoint() as sink:
        handler = MDRHandler(product={"name": "shop", "vendor_name": "ACME"})  # MDR_HOST/TOKEN
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        configure()

        log = structlog.get_logger("shop.orders")
        structlog.contextvars.bind_contextvars(request_id="req-42")
        log.info("order placed", order_id="order-7", items=3)
        log.warning("stock is low", sku="sku-1", left=2)
        try:
            charge("order-7", 0)
        except ValueError:
            log.exception("payment failed", order_id="order-7")
        structlog.contextvars.clear_contextvars()

        root.removeHandler(handler)
        handler.close()  # sends what is queued (at exit this happens by itself)
        print(handler.stats)
        if sink is None:
            return 0
        print(sink.report())
        for problem in sink.problems:
            print(f"problem: {problem}")
        return 0 if not sink.problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
