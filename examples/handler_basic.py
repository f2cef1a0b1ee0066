"""MDRHandler in its plainest form: one ``addHandler`` line, then ordinary logging.

Sends to the endpoint in MDR_HOST / MDR_TOKEN. Without them, a local HEC receiver is started
and what it received is printed, so ``python examples/handler_basic.py`` just works.
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import ExitStack

from py_mdr.handler import MDRHandler
from py_mdr.ocsf_models.objects.product import Product
from py_mdr.sink import HECSink, format_event


def main() -> None:
    with ExitStack() as stack:
        sink = None
        if not (os.environ.get("MDR_HOST") and os.environ.get("MDR_TOKEN")):
            sink = stack.enter_context(HECSink(token="example-token"))
            os.environ["MDR_HOST"], os.environ["MDR_TOKEN"] = sink.url, sink.token

        # host and token come from MDR_HOST / MDR_TOKEN; pass host=, token= to set them here.
        handler = MDRHandler(product=Product(name="billing", vendor_name="ACME.Payments"))
        logger = logging.getLogger("billing.invoices")
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)

        logger.debug("loaded %d tariffs", 12)
        logger.info("invoice %s sent to %s", "INV-1042", "alice@example.com")
        logger.warning("payment for %s is %d days late", "INV-0999", 14)
        try:
            int("twelve")
        except ValueError:
            logger.exception("could not price invoice %s", "INV-1043")

        handler.close()  # sends what is queued (at exit this happens by itself)
        print(handler.stats)
        if sink is not None:
            show(sink)


def show(sink: HECSink) -> None:
    envelopes = sink.envelopes
    print(f"\nthe local receiver got {len(envelopes)} event(s):")
    for index, envelope in enumerate(envelopes):
        print(format_event(index, envelope, problems_of(sink, index)))
    if envelopes:
        print("\nthe last one as MDR stores it:")
        print(json.dumps(envelopes[-1], indent=2))


def problems_of(sink: HECSink, index: int) -> list[str]:
    prefix = f"{index}: "
    return [problem[len(prefix):] for problem in sink.problems if problem.startswith(prefix)]


if __name__ == "__main__":
    main()
