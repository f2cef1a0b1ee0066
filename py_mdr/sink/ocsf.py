"""Whether what arrived is OCSF: the schema's problems, or what an event that is not OCSF at
all lacks, in words that say what to add."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from typing import Any, cast

from py_mdr.serialize import safe_str

logger = logging.getLogger("py_mdr.sink")

Validator = Callable[[Any], Iterable[object]]

#: What every OCSF event carries (the base event's required attributes, profiles aside).
BASE_REQUIRED = (
    "class_uid",
    "activity_id",
    "category_uid",
    "type_uid",
    "severity_id",
    "time",
    "metadata",
)


def load_validator() -> Validator | None:
    """The OCSF schema validator, or None while ``py_mdr.validate`` is not available."""
    try:
        module = importlib.import_module("py_mdr.validate")
    except ModuleNotFoundError as exc:
        if exc.name != "py_mdr.validate":
            logger.warning("OCSF validation is off: %s", exc)
        return None
    except Exception as exc:  # a broken validator must not take the receiver down
        logger.warning("OCSF validation is off: %s", safe_str(exc))
        return None
    found = getattr(module, "validate", None)
    return cast(Validator, found) if callable(found) else None


def ocsf_problems(validator: Validator, event: Any) -> list[str]:
    """The schema's problems with ``event``; for one that is not OCSF at all, what it lacks."""
    missing = not_ocsf(event)
    if missing is not None:
        return [f"<event>: {missing}"]
    try:
        return [safe_str(problem) for problem in validator(event)]
    except Exception as exc:
        return [f"<event>: the validator failed: {type(exc).__name__}: {safe_str(exc)}"]


def not_ocsf(event: Any) -> str | None:
    """Why ``event`` is not an OCSF event at all (naming what is missing), or None if it is one
    (whose problems, if any, the schema validator then names)."""
    if not isinstance(event, dict):
        kind = "text" if isinstance(event, str) else type(event).__name__
        return (
            f"not an OCSF event: it is {kind}, not a JSON object; an OCSF event is an object "
            f"with {', '.join(BASE_REQUIRED)} (`py-mdr schema` lists the classes)"
        )
    if "class_uid" in event:
        return None
    lacking = [name for name in BASE_REQUIRED if name not in event]
    return (
        f"not an OCSF event: it has no class_uid; missing {', '.join(lacking)} "
        "(`py-mdr schema` lists the classes, `py-mdr schema CLASS` what each one needs)"
    )
