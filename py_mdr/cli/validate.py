"""``py-mdr validate``: every OCSF schema problem of every input event, by line and path."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TextIO

from py_mdr.cli.input import Item, read_items
from py_mdr.cli.options import hint_terminal
from py_mdr.serialize import complete
from py_mdr.validate import validate


def run_validate(paths: Sequence[str], *, as_json: bool, out: TextIO, err: TextIO) -> int:
    """Print each problem (text, or JSON Lines with ``as_json``); 1 when there is any."""
    checked = invalid = problems = unreadable = 0
    for item in read_items(paths):
        found = problems_of(item)
        if item.line:
            checked += 1
            invalid += bool(found)
        else:
            unreadable += 1
        problems += len(found)
        for path, kind, message in found:
            if as_json:
                record = {
                    "source": item.source,
                    "line": item.line,
                    "path": path,
                    "kind": kind,
                    "message": message,
                }
                out.write(json.dumps(record) + "\n")
            elif item.error is None:  # a problem of the event: name the attribute
                out.write(f"{item.where}: {path or '<event>'}: {message}\n")
            else:  # input that could not be read as JSON: there is no attribute to name
                out.write(f"{item.where}: {message}\n")
    summary = f"{checked} checked, {checked - invalid} valid, {invalid} with problems"
    if unreadable:
        summary += f", {unreadable} input(s) could not be read"
    out.flush()
    err.write(f"py-mdr validate: {summary}\n")
    return 1 if problems else 0


def problems_of(item: Item) -> list[tuple[str, str, str]]:
    """(path, kind, message) for every problem of one input item as written: derived values
    are filled first, but wrong-typed values stay as they are (``send`` may change them to fit,
    and says how many it did)."""
    if item.error is not None:
        return [("", "input" if item.line == 0 else "json", item.error)]
    if not isinstance(item.value, dict):
        return [("", "type", "not a JSON object: each event must be an object")]
    try:
        return [(p.path, p.kind, p.message) for p in validate(complete(item.value, coerce=False))]
    except Exception as exc:  # a value the serializer could not handle
        return [("", "type", f"cannot be read as an event: {type(exc).__name__}: {exc}")]


def run(args: argparse.Namespace) -> int:
    """``py-mdr validate``: 0 when every event is valid, else 1."""
    hint_terminal("validate", args.files)
    return run_validate(args.files, as_json=args.format == "json", out=sys.stdout, err=sys.stderr)
