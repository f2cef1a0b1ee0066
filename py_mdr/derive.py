"""Derived values of an OCSF event: what follows from what the user set, never contradicting it.

The serializer calls :func:`derive_event` on every event it writes. Filled when missing:
``class_uid`` and ``category_uid`` (from the class), ``activity_id`` (from ``type_uid``, then
from ``activity_name``), the ``*_id`` / caption pairs (``severity``, ``status``, ...),
``type_uid`` and ``type_name``, ``metadata.version``, ``time`` (now), and the ``datetime``
profile when a ``datetime_t`` attribute is present. A value the user set is never replaced.
"""

from __future__ import annotations

import functools
import re
import time as _time
from collections.abc import Mapping
from typing import Any

from py_mdr import OCSF_VERSION
from py_mdr.ocsf_models._base import ModelSpec, load_model
from py_mdr.ocsf_models._registry import CLASSES

__all__ = ["DATETIME_PROFILE", "caption_key", "derive_event", "fill_pair", "spec_for_event"]

#: The OCSF profile that ``*_dt`` (``datetime_t``) attributes belong to.
DATETIME_PROFILE = "datetime"

_SPACING = re.compile(r"[\s_\-]+")


def caption_key(text: str) -> str:
    """A caption as compared: case and spacing ignored (``"Does not exist"`` ==
    ``"does_not_exist"`` == ``"DoesNotExist"``)."""
    return _SPACING.sub("", text).casefold()


def spec_for_event(event: Mapping[str, Any]) -> ModelSpec | None:
    """The class of an event dict: from ``class_uid``, else from ``type_uid`` (class * 100 +
    activity); ``None`` when neither names a known class."""
    uid = event.get("class_uid")
    if uid is None:
        type_uid = event.get("type_uid")
        uid = type_uid // 100 if type(type_uid) is int else None
    path = CLASSES.get(uid) if type(uid) is int else None
    return load_model(path).__ocsf__ if path else None


def derive_event(
    spec: ModelSpec,
    pairs: list[tuple[str, str, Any]],
    out: dict[str, Any],
    *,
    has_datetime: bool,
) -> None:
    """Fill the derived values of one serialized event ``out`` in place.

    ``pairs`` are the class's ``(id attribute, caption attribute, enum)`` triples (``type_uid``
    excluded); ``has_datetime`` says whether a ``datetime_t`` value was written anywhere in it.
    """
    out.setdefault("class_uid", spec.uid)
    out.setdefault("category_uid", spec.category_uid)
    out.setdefault("time", int(_time.time() * 1000))
    class_uid, type_uid = out.get("class_uid"), out.get("type_uid")
    if (
        "activity_id" not in out
        and type(type_uid) is int
        and type(class_uid) is int
        and type_uid // 100 == class_uid
    ):
        out["activity_id"] = type_uid - class_uid * 100  # never contradicts the type_uid given
    if "activity_id" not in out and "activity_name" not in out:
        out["activity_id"] = 0
    if "severity_id" not in out and "severity" not in out:
        out["severity_id"] = 0
    metadata = out.get("metadata")
    if metadata is None:
        metadata = out["metadata"] = {}
    if isinstance(metadata, dict):  # anything else is the user's mistake, for validate() to name
        metadata.setdefault("version", OCSF_VERSION)
        if has_datetime:
            _add_profile(metadata, DATETIME_PROFILE)
    for id_name, caption_name, enum_type in pairs:
        if id_name in out or caption_name in out:
            fill_pair(out, id_name, caption_name, enum_type)
    activity = out.get("activity_id")
    if "type_uid" not in out and type(activity) is int and type(class_uid) is int:
        out["type_uid"] = class_uid * 100 + activity
    type_attr = spec.attributes.get("type_uid")
    if type_attr is not None and type_attr.enum is not None:
        fill_pair(out, "type_uid", "type_name", type_attr.enum)


def _add_profile(metadata: dict[str, Any], profile: str) -> None:
    profiles = metadata.get("profiles")
    if profiles is None:
        metadata["profiles"] = [profile]
    elif isinstance(profiles, list) and profile not in profiles:
        profiles.append(profile)  # a list the serializer made: changing it changes no input


def fill_pair(out: dict[str, Any], id_name: str, caption_name: str, enum_type: Any) -> None:
    """The caption for an id, or the id for a caption (99 Other when it names no value)."""
    captions: Mapping[Any, str] = enum_type.__captions__
    if id_name in out:
        if caption_name not in out:
            caption = captions.get(out[id_name])
            if caption is not None:
                out[caption_name] = caption
    elif caption_name in out:
        wanted = out[caption_name]
        value = _by_caption(enum_type).get(caption_key(wanted)) if type(wanted) is str else None
        if value is not None:
            out[id_name] = value
        elif 99 in captions:
            out[id_name] = 99


@functools.cache
def _by_caption(enum_type: Any) -> dict[str, Any]:
    return {caption_key(caption): value for value, caption in enum_type.__captions__.items()}
