"""Enriching every event by overriding ``map_log_record`` (the published README's BetterHandler).

``map_log_record`` runs on the handler's worker thread, never on the caller's. Sends to the
endpoint in MDR_HOST / MDR_TOKEN; without them, a local HEC receiver is started and what it
received is printed.
"""

from __future__ import annotations

import json
import logging
import os

from _endpoint import mdr_endpoint

from py_mdr.handler import MDRHandler
from py_mdr.ocsf_models.events.system_activity.event_log_activity import EventLogActivity
from py_mdr.ocsf_models.objects.enrichment import Enrichment
from py_mdr.ocsf_models.objects.product import Product


class BetterHandler(MDRHandler):
    def map_log_record(self, record: logging.LogRecord) -> EventLogActivity:
        activity = super().map_log_record(record)
        # a dict value (as in the published README) is sent as `data`, its JSON text as `value`
        activity.enrichments.append(
            Enrichment(name="Additional information", value={"important": "stuff"})
        )
        return activity


def main() -> None:
    with mdr_endpoint() as sink:
        handler = BetterHandler(
            host=os.environ["MDR_HOST"],
            token=os.environ["MDR_TOKEN"],
            ssl_verify=True,
            product=Product(name="shop", vendor_name="ACME.Web"),
        )
        logger = logging.getLogger("shop.checkout")
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        logger.info("order %s paid", "ORD-5")
        logger.error("card of customer %s declined", "C-81")
        handler.close()

        if sink is not None:
            print(sink.report(last_as_json=False))
            if sink.events:
                print("\nenrichments of the last one:")
                print(json.dumps(sink.events[-1].get("enrichments"), indent=2))


if __name__ == "__main__":
    main()
