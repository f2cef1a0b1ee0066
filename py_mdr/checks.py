"""One check per kind of setting, so every door accepts and refuses the same values.

Each takes the name the caller wrote (``"timeout"``, ``"HECConfig.read_timeout"``) and, for a
value read from the environment, the variable; each raises :class:`ConfigError` naming both and
saying what is accepted, and returns the value in its one canonical type.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

from py_mdr.errors import ConfigError

__all__ = ["MAX_SECONDS", "count", "flag", "log_level", "mapping_keys", "path", "seconds", "text"]

#: The longest wait any setting may ask for: a day. Far longer than any timeout, linger or
#: backoff needs, and far below what the clock and ``threading``'s waits can take (a timeout of
#: 1e10 s would overflow them in the middle of a send).
MAX_SECONDS = 86_400.0


def _where(name: str, variable: str | None) -> str:
    return f"{name} (environment variable {variable})" if variable else name


def seconds(
    name: str, value: object, *, zero_ok: bool = False, variable: str | None = None
) -> float:
    """A number of seconds, > 0 (or >= 0 with ``zero_ok``) and at most :data:`MAX_SECONDS`;
    a bool is refused.

    ``True`` is an int to Python, but ``timeout=True`` is a mistake, not one second.
    """
    bound = ">= 0" if zero_ok else "> 0"
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value >= 0 if zero_ok else value > 0)
        and value <= MAX_SECONDS
    ):
        return float(value)
    raise ConfigError(
        f"{_where(name, variable)} must be a finite number of seconds {bound} and at most "
        f"{MAX_SECONDS:g} (a day), got {value!r}"
    )


def count(
    name: str,
    value: object,
    *,
    low: int = 1,
    high: int | None = None,
    variable: str | None = None,
) -> int:
    """A whole number in ``[low, high]``; a bool or a float (even ``5.0``) is refused."""
    if type(value) is int and value >= low and (high is None or value <= high):
        return value
    span = f"between {low} and {high}" if high is not None else f">= {low}"
    raise ConfigError(f"{_where(name, variable)} must be an integer {span}, got {value!r}")


def flag(name: str, value: object) -> bool:
    """A real ``True`` or ``False``: ``"false"`` is a true string, so strings are refused."""
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{name} must be True or False, got {value!r}")


def text(name: str, value: object, *, variable: str | None = None) -> str:
    """A non-blank string, stripped of surrounding space."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    got = "a blank string" if isinstance(value, str) else f"{type(value).__name__} {value!r}"
    raise ConfigError(f"{_where(name, variable)} must be a non-empty string, got {got}")


def path(name: str, value: object, *, variable: str | None = None) -> str:
    """A file or directory path (``str`` or ``os.PathLike``), not blank; ``~`` expanded."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str) and value.strip():
        return os.path.expanduser(value.strip())
    got = "a blank string" if isinstance(value, str) else type(value).__name__
    raise ConfigError(f"{_where(name, variable)} must be a path (str or os.PathLike), got {got}")


def mapping_keys(name: str, value: Any, valid: tuple[str, ...]) -> None:
    """Refuse a dict with a key that is not one of ``valid``, naming it and the valid ones."""
    unknown = sorted(str(key) for key in value if key not in valid)
    if unknown:
        raise ConfigError(
            f"{name} has unknown key(s) {', '.join(map(repr, unknown))}; "
            f"valid keys: {', '.join(valid)}"
        )


def log_level(name: str, value: object) -> int | str:
    """A ``logging`` level: a whole number >= 0, or the name of a registered level."""
    if type(value) is int and value >= 0:
        return value
    if isinstance(value, str) and isinstance(logging.getLevelName(value), int):
        return value
    raise ConfigError(
        f"{name} must be a logging level: a whole number >= 0 or a level name such as 'INFO' "
        f"or 'WARNING' (upper case), got {value!r}"
    )
