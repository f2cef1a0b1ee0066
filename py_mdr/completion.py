"""An event dict completed for sending: what ``py-mdr send`` and ``MDRClient.send`` both do.

A dict is written as its class's model would be (pruned, derived values filled, wrong-typed
values fitted unless ``coerce`` is off), and what a sender knows about itself fills what OCSF
requires and the dict left out: ``metadata.product`` (the sender's product) and, for a class
that needs one of ``log_name``/``log_file``/... (Event Log Activity), ``log_name`` (the sender's
name). A value the caller set is never replaced. A dict that names no known class is only made
JSON-safe and pruned, so ``validate`` can still say what is wrong with it. (``py-mdr send
--strict`` validates the event completed this way, without fitting wrong-typed values.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from py_mdr.derive import spec_for_event
from py_mdr.eventlog import default_product
from py_mdr.serialize import Notes, complete, complete_noted

__all__ = ["complete_event", "complete_event_noted"]

_LOG_NAME = "log_name"


def complete_event(
    event: Mapping[str, Any],
    *,
    name: str | None = None,
    product: Mapping[str, Any] | None = None,
    coerce: bool = True,
) -> dict[str, Any]:
    """``event`` as it is sent: derived values filled, the sender's product and name added where
    OCSF requires them and the dict has none (``product`` defaults as for ``MDRHandler``)."""
    return _fill_sender(complete(event, coerce=coerce), name, product)


def complete_event_noted(
    event: Mapping[str, Any],
    *,
    name: str | None = None,
    product: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], Notes]:
    """:func:`complete_event` (coercing), with the notes on what serializing changed or suspects."""
    out, notes = complete_noted(event)
    return _fill_sender(out, name, product), notes


def _fill_sender(
    out: dict[str, Any], name: str | None, product: Mapping[str, Any] | None
) -> dict[str, Any]:
    spec = spec_for_event(out)
    if spec is None:
        return out
    metadata = out.get("metadata")
    if isinstance(metadata, dict) and "product" not in metadata:  # a fresh dict `complete` made
        metadata["product"] = default_product(product)
    needed = spec.constraints.get("at_least_one", ())
    if name and _LOG_NAME in needed and not any(out.get(attr) is not None for attr in needed):
        out[_LOG_NAME] = name
    return out
