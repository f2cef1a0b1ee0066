"""MDRHandler configured with ``logging.config.dictConfig`` (the same works from YAML or JSON).

Every argument is a plain keyword; ``product`` and ``retry`` may be given as dicts. Sends to
the endpoint in MDR_HOST / MDR_TOKEN; without them, a local HEC receiver is started and what it
received is printed.
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any

from _endpoint import mdr_endpoint


def logging_config() -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "console": {"class": "logging.StreamHandler", "level": "WARNING"},
            "mdr": {
                "()": "py_mdr.handler.MDRHandler",  # or "class": "py_mdr.handler.MDRHandler"
                "level": "INFO",
                # host / token: from MDR_HOST / MDR_TOKEN (or give "host": ..., "token": ...)
                "product": {"name": "inventory", "vendor_name": "ACME.Warehouse"},
                "source_type": "inventory",
                "max_queue_records": 20_000,
                "linger": 0.2,
                "close_timeout": 3.0,
                "retry": {"initial_backoff": 0.2, "max_backoff": 10.0, "deadline": 30.0},
            },
        },
        "root": {"level": "DEBUG", "handlers": ["console", "mdr"]},
    }


def main() -> None:
    with mdr_endpoint() as sink:
        logging.config.dictConfig(logging_config())
        log = logging.getLogger("inventory.stock")
        log.debug("not sent: below the handler's INFO level")
        log.info("restocked %s: %d units", "SKU-77", 40)
        log.warning("stock of %s below %d", "SKU-12", 5)

        logging.shutdown()  # flushes and closes every handler (also happens at exit)
        if sink is not None:
            print(sink.report(last_as_json=False))


if __name__ == "__main__":
    main()
