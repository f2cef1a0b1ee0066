"""Context fields through ``logging.LoggerAdapter`` and ``extra=``: they arrive in
``unmapped.extra``, made JSON-safe (any value, even one that cannot be serialized, arrives
readable).

Sends to the endpoint in MDR_HOST / MDR_TOKEN; without them, a local HEC receiver is started and
what it received is printed.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import MutableMapping
from decimal import Decimal
from typing import Any

from _endpoint import mdr_endpoint

from py_mdr.handler import MDRHandler


class ContextAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Merges the adapter's context with a call's own ``extra=`` (the stdlib adapter replaces
    the call's, unless ``merge_extra=True`` on Python 3.13+)."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def main() -> None:
    with mdr_endpoint() as sink:
        handler = MDRHandler(product={"name": "api", "vendor_name": "ACME.Platform"})
        base = logging.getLogger("api.requests")
        base.setLevel(logging.INFO)
        base.addHandler(handler)

        # every line logged through this adapter carries the request's context
        log = ContextAdapter(base, {"request_id": "req-7f3a", "tenant": "acme"})
        log.info("GET %s answered %d", "/v1/orders", 200)
        log.warning(
            "slow query",
            extra={
                "elapsed": Decimal("2.75"),
                "at": datetime.datetime.now(datetime.timezone.utc),
                "tables": {"orders", "customers"},
                "raw": b"\x00\xff",
            },
        )
        handler.close()

        if sink is not None:
            print(sink.report(last_as_json=False))
            print("their unmapped fields:")
            for event in sink.events:
                print(f"- {event.get('message')}:")
                print(json.dumps(event.get("unmapped"), indent=2))


if __name__ == "__main__":
    main()
