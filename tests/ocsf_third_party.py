"""A third-party OCSF 1.3.0 validator: ocsf-json-schema's JSON Schema for the event's class and
declared profiles (the OCSF server's own 1.3.0 export, shipped in that package), checked by
jsonschema. Nothing here comes from py-mdr, so it can judge py-mdr's output and validate()."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jsonschema
from ocsf_json_schema import (  # type: ignore[import-untyped]
    OcsfJsonSchemaEmbedded,
    get_ocsf_schema,
)


@functools.cache
def _schema() -> Any:
    return OcsfJsonSchemaEmbedded(get_ocsf_schema(version="1.3.0"))


@functools.cache
def _class_keys() -> dict[int, str]:
    # Its lookup_class_name_from_uid answers "prefetch_query" for an extension class whose key
    # is "win/prefetch_query", which its get_class_schema then cannot find: look the key up.
    return {c["uid"]: key for key, c in get_ocsf_schema(version="1.3.0")["classes"].items()}


@functools.cache
def _validator(class_uid: int, profiles: tuple[str, ...]) -> jsonschema.Draft202012Validator:
    name = _class_keys().get(class_uid)
    if name is None:
        raise ValueError(f"no class with uid {class_uid}")
    return jsonschema.Draft202012Validator(_schema().get_class_schema(name, list(profiles)))


def third_party_errors(event: Mapping[str, Any]) -> list[str]:
    """Every error the third-party validator finds in a serialized event ("path: message")."""
    class_uid = event.get("class_uid")
    if type(class_uid) is not int:
        return ["class_uid: not an integer"]
    metadata = event.get("metadata")
    declared = metadata.get("profiles") if isinstance(metadata, Mapping) else None
    profiles = tuple(sorted({p for p in declared or () if isinstance(p, str)}))
    try:
        validator = _validator(class_uid, profiles)
    except ValueError as exc:  # a class or profile that the schema does not know
        return [f"<event>: {exc}"]
    errors = [e for e in validator.iter_errors(dict(event)) if not reads_dotted_names(e)]
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in errors)


def reads_dotted_names(error: jsonschema.ValidationError) -> bool:
    """The one known defect of ocsf-json-schema 1.2.0 for 1.3.0: a constraint that names a
    nested attribute (patch_state's ``device.os.sp_name``) becomes ``required`` of a key
    spelled with dots, so every patch_state event fails it. validate() follows the path."""
    if error.validator not in ("anyOf", "oneOf"):
        return False
    options = error.validator_value if isinstance(error.validator_value, list) else []
    return any("." in name for option in options for name in option.get("required", ()))
