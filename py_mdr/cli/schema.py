"""``py-mdr schema``: the OCSF 1.3.0 classes or objects, or one class's (or object's) attributes.

Meant for people writing OCSF JSON in another language: what to set, of which type, which
values an enum takes, and what py-mdr fills in when it is missing.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from py_mdr.cli.options import UsageError
from py_mdr.ocsf_models._base import GENERIC_OBJECT, REQUIRED, Attr, ModelSpec, load_model
from py_mdr.ocsf_models._registry import CLASS_NAMES, CLASSES, OBJECTS

_ORDER = {REQUIRED: 0, "recommended": 1, "optional": 2}
#: Set by the serializer when missing: derived from other attributes, or defaulted.
_FILLED = frozenset({"category_uid", "type_uid", "time", "activity_id", "severity_id"})
_ENUM_WIDTH = 70


class UnknownName(LookupError):
    """No class or object by that name or uid."""


def find(name: str) -> ModelSpec:
    """A class by uid, name or caption, else an object by name; raises :class:`UnknownName`."""
    wanted = name.strip()
    key = wanted.lower().replace(" ", "_").replace("-", "_")
    path: str | None = None
    if wanted.isdigit():
        path = CLASSES.get(int(wanted))
    elif key in CLASS_NAMES:
        path = CLASSES[CLASS_NAMES[key]]
    elif key in OBJECTS:
        path = OBJECTS[key]
    else:
        for spec in class_specs():
            if spec.caption.lower() == wanted.lower():
                return spec
    if path is None:
        choices = [*CLASS_NAMES, *OBJECTS]
        close = difflib.get_close_matches(key, choices, n=4, cutoff=0.6)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UnknownName(
            f"no OCSF 1.3.0 class or object called {name!r}{hint}; "
            "`py-mdr schema` lists the classes"
        )
    return load_model(path).__ocsf__


def class_specs() -> list[ModelSpec]:
    """Every event class, by uid."""
    return [load_model(CLASSES[uid]).__ocsf__ for uid in sorted(CLASSES)]


def list_classes(out: TextIO, as_json: bool) -> None:
    rows = [
        {"uid": s.uid, "name": s.name, "caption": s.caption, "category": s.category_name or ""}
        for s in class_specs()
    ]
    if as_json:
        out.write(json.dumps(rows, indent=2) + "\n")
        return
    table = [["uid", "name", "caption", "category"]]
    table += [[str(r["uid"]), str(r["name"]), str(r["caption"]), str(r["category"])] for r in rows]
    _print_table(out, table)
    out.write(
        "\n`py-mdr schema NAME_OR_UID` shows the attributes of one class or object; "
        "`py-mdr schema --objects` lists the objects.\n"
    )


def object_specs() -> list[ModelSpec]:
    """Every object (the type of a nested attribute), by name."""
    return [load_model(OBJECTS[name]).__ocsf__ for name in sorted(OBJECTS)]


def list_objects(out: TextIO, as_json: bool) -> None:
    rows = [
        {"name": s.name, "caption": s.caption, "attributes": len(s.attributes)}
        for s in object_specs()
    ]
    if as_json:
        out.write(json.dumps(rows, indent=2) + "\n")
        return
    table = [["name", "caption", "attributes"]]
    table += [[str(r["name"]), str(r["caption"]), str(r["attributes"])] for r in rows]
    _print_table(out, table)
    out.write("\n`py-mdr schema NAME` shows the attributes of one object.\n")


def describe(spec: ModelSpec, out: TextIO, as_json: bool) -> None:
    filled = _filled(spec)
    rows = [_attribute(name, attr, name in filled) for name, attr in _sorted(spec)]
    if as_json:
        data = {
            "name": spec.name,
            "caption": spec.caption,
            "kind": "class" if spec.is_event else "object",
            "uid": spec.uid,
            "category": spec.category_name,
            "category_uid": spec.category_uid,
            "url": spec.url,
            "constraints": {kind: list(names) for kind, names in spec.constraints.items()},
            "attributes": rows,
        }
        out.write(json.dumps(data, indent=2) + "\n")
        return
    if spec.is_event:
        out.write(
            f"{spec.caption}: class {spec.name}, class_uid {spec.uid}, "
            f"category {spec.category_name} ({spec.category_uid})\n"
        )
    else:
        out.write(f"{spec.caption}: object {spec.name}\n")
    out.write(f"{spec.url}\n")
    for kind, names in spec.constraints.items():
        words = "at least one of" if kind == "at_least_one" else "exactly one of"
        out.write(f"needs {words}: {', '.join(names)}\n")
    out.write("\n")
    table = [["attribute", "requirement", "type", "profile", "values"]]
    for row in rows:
        name = row["name"] + (" *" if row["filled"] else "")
        kind = row["type"] + ("[]" if row["array"] else "")
        table.append([name, row["requirement"], kind, row["profile"] or "", _values(row)])
    _print_table(out, table)
    notes = ["\n* filled in by py-mdr when missing (derived from other attributes, or a default)"]
    if any(row["object"] for row in rows):
        notes.append("an object type is described by `py-mdr schema TYPE`; [] means a list")
    notes.append("a profile's attributes need the profile's name in metadata.profiles")
    out.write("\n".join(notes) + "\n")


def _sorted(spec: ModelSpec) -> list[tuple[str, Attr]]:
    return sorted(
        ((attr.json_name or name, attr) for name, attr in spec.attributes.items()),
        key=lambda pair: (pair[1].profile is not None, _ORDER.get(pair[1].requirement, 3), pair[0]),
    )


def _filled(spec: ModelSpec) -> set[str]:
    filled = {attr.sibling for attr in spec.attributes.values() if attr.sibling and attr.enum}
    if spec.is_event:
        filled |= _FILLED
    if spec.name == "metadata":
        filled.add("version")
    return filled


def _attribute(name: str, attr: Attr, filled: bool) -> dict[str, Any]:
    captions = getattr(attr.enum, "__captions__", None) if attr.enum is not None else None
    is_object = attr.obj is not None and attr.obj != GENERIC_OBJECT
    return {
        "name": name,
        "requirement": attr.requirement,
        "type": attr.type,
        "array": attr.is_array,
        "object": is_object,
        "profile": attr.profile,
        "enum": {str(k): v for k, v in captions.items()} if captions else None,
        "filled": filled,
    }


def _values(row: dict[str, Any]) -> str:
    enum = row["enum"]
    if not enum:
        return ""
    text = ", ".join(f"{key} {caption}" for key, caption in enum.items())
    if len(text) > _ENUM_WIDTH:
        text = text[: _ENUM_WIDTH - 3].rsplit(", ", 1)[0] + f", ... ({len(enum)} values)"
    return text


def _print_table(out: TextIO, rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        out.write("  ".join(cells).rstrip() + "\n")


def run(args: argparse.Namespace) -> int:
    """``py-mdr schema``: the classes, or one class's or object's attributes."""
    as_json = args.format == "json"
    if args.objects and args.name is not None:
        raise UsageError(
            f"give either --objects (to list them) or a name ({args.name!r}), not both"
        )
    if args.objects:
        list_objects(sys.stdout, as_json)
        return 0
    if args.name is None:
        list_classes(sys.stdout, as_json)
        return 0
    try:
        spec = find(args.name)
    except UnknownName as exc:
        raise UsageError(str(exc)) from None
    describe(spec, sys.stdout, as_json)
    return 0
