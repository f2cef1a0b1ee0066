"""``py-mdr send --dry-run``: what would be sent, and every problem, without the network.

Each envelope goes to standard output exactly as it would go on the wire (one per line), so it
can be read or piped on; what would be rejected, and every schema problem of an event as it
would be sent (what ``--strict`` would refuse), goes to standard error.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from py_mdr.cli.input import Item
from py_mdr.cli.prepare import Noted, Rejected, SendSettings, prepare, problems_as_sent


def dry_run(items: Iterable[Item], settings: SendSettings, *, out: TextIO, err: TextIO) -> int:
    """Prepare every item as ``send`` would; 0 when all would be sent without a problem, else 1."""
    ready = rejected = flawed = 0
    for item in items:
        prepared = prepare(item, settings)
        if isinstance(prepared, Rejected):
            rejected += 1
            err.write(f"py-mdr send: {prepared.where}: {prepared.reason}\n")
            continue
        if isinstance(prepared, Noted):
            for warning in prepared.warnings:
                err.write(f"py-mdr send: {prepared.where}: {warning} (would be sent as written)\n")
            prepared = prepared.envelope
        problems = [] if settings.text else problems_as_sent(item.value, settings)
        flawed += bool(problems)
        for path, _kind, message in problems:
            err.write(f"py-mdr send: {item.where}: {path or '<event>'}: {message}\n")
        ready += 1
        out.write(prepared.decode("utf-8") + "\n")
    out.flush()
    summary = f"{ready} would be sent"
    if flawed:
        summary += f" ({flawed} with schema problems, which --strict would refuse)"
    err.write(f"py-mdr send: dry run: {summary}, {rejected} rejected; nothing was sent\n")
    return 1 if rejected or flawed else 0
