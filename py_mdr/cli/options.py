"""What the command's options take: argument types, and the usage error they raise.

Kept apart from the parser so that every subcommand can raise :class:`UsageError` without
building the parser, and so the argument types are testable as plain functions.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
#: Log level words --severity takes besides OCSF names; py_mdr.severity maps them.
LEVEL_WORDS = ("trace", "debug", "info", "notice", "warn", "warning", "error")


class UsageError(Exception):
    """A configuration or usage problem: exit code 2, one line on stderr."""


def severity(value: str) -> tuple[int, str]:
    """``--severity``: an OCSF severity name or id, or a log level word (the library's table)."""
    from py_mdr.ocsf_models.enums import SeverityId
    from py_mdr.severity import UNKNOWN, from_otel_text

    captions: dict[int, str] = SeverityId.__captions__
    text = value.strip().lower()
    for severity_id, caption in captions.items():
        if text == caption.lower() or (text.isdigit() and int(text) == severity_id):
            return severity_id, caption
    found = from_otel_text(text)
    if found != UNKNOWN:
        return found
    names = ", ".join(caption.lower() for caption in captions.values())
    raise argparse.ArgumentTypeError(
        f"{value!r} is not a severity: use an OCSF name ({names}), a level word "
        f"({', '.join(LEVEL_WORDS)}) or an OCSF severity_id ({', '.join(map(str, captions))})"
    )


def seconds(value: str) -> float:
    """``--timeout``: a positive number; argparse turns the error into a usage message."""
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 < number < 1e6:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of seconds")
    return number


def source_name(value: str) -> str:
    """``--name``: it becomes the HEC source and part of the sourcetype, so keep it plain."""
    if not _NAME.match(value):
        raise argparse.ArgumentTypeError(
            f"{value!r}: use 1 to 100 letters, digits, '_', '.' or '-', starting with a letter "
            "or digit"
        )
    return value


def warn(text: str) -> None:
    print(f"py-mdr: warning: {text}", file=sys.stderr)


def hint_terminal(command: str, files: Sequence[str]) -> None:
    """Someone typing `py-mdr send` alone would otherwise see it simply wait."""
    reads_stdin = not files or "-" in files
    if reads_stdin and sys.stdin is not None and sys.stdin.isatty():
        print(f"py-mdr {command}: reading from the terminal; end with Ctrl-D", file=sys.stderr)
