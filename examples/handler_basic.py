"""MDRHandler in its plainest form: one ``addHandler`` line, then ordinary logging.

Sends to the endpoint in MDR_HOST / MDR_TOKEN. Without them, a local HEC receiver is started
and what it received is printed, so ``python examples/handler_basic.py`` just works.
"""

from __future__ import annotations

import logging

from _endpoint import mdr_endpoint

from py_mdr.handler import MDRHandler
from py_mdr.ocsf_models.objects.product import Product


def main() -> None:
    with mdr_endpoint() as sink:
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
            print(sink.report())


if __name__ == "__main__":
    main()
