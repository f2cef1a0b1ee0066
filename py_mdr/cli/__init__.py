"""The ``py-mdr`` command: send, validate and inspect OCSF events from any language or shell.

Exit codes: 0 all good, 1 something was not sent / not valid / not reachable, 2 a usage or
configuration error (nothing was attempted). Each subcommand is the module of its name in this
package and is imported only when it runs, so ``py-mdr --help`` stays quick.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence

from py_mdr.cli.options import UsageError, severity

__all__ = ["UsageError", "main", "severity"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``py-mdr``; returns the exit code (the console script exits with it)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    verbose = 0
    while verbose < len(arguments) and arguments[verbose] in ("-v", "--verbose"):
        verbose += 1
    if arguments[verbose : verbose + 1] == ["sink"]:
        if verbose:  # otherwise the receiver's own --log-requests decides
            _logging(True)
        return _guarded(lambda: _run_sink(arguments[verbose + 1 :]))
    from py_mdr.cli.parser import build_parser

    parser = build_parser()
    args = parser.parse_args(arguments)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    _logging(args.verbose)
    module = f"py_mdr.cli.{args.command}"
    return _guarded(lambda: int(importlib.import_module(module).run(args)))


def _run_sink(argv: Sequence[str]) -> int:
    """The receiver has its own parser (``python -m py_mdr.sink`` takes the same options)."""
    from py_mdr.sink import main as sink_main

    return sink_main(argv)


def _logging(verbose: bool) -> None:
    library = logging.getLogger("py_mdr")
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("py-mdr: %(levelname)s %(name)s: %(message)s"))
        library.addHandler(handler)
        library.setLevel(logging.DEBUG)
    else:  # the command prints its own messages; keep the library's out of the way
        library.addHandler(logging.NullHandler())
        library.propagate = False


def _guarded(run: Callable[[], int]) -> int:
    try:
        return int(run())
    except UsageError as exc:
        print(f"py-mdr: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("py-mdr: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (`| head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
