"""What a value of each OCSF 1.3.0 data type must be: JSON type, length, range and format.

From the compiled schema (``_registry.TYPES``): the primitive, ``max_len`` (a derived string
type without its own keeps ``string_t``'s), ``range``, and ``regex``. Each regular expression
must match the whole value (JSON Schema only searches for it, which lets ``"x" + uuid`` pass) and
reads ``\\d`` and ``\\s`` as ASCII only. On top, a few checks from the types' own definitions that
their expressions miss: ``ip_t`` must be an address (its expression leaves a dot unescaped),
``subnet_t`` a CIDR network (it has no expression), ``datetime_t`` a real date and time, and
``integer_t`` / ``long_t`` must fit 32 / 64 bits.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

from py_mdr.ocsf_models._registry import TYPES

__all__ = ["TypeRule", "rule_for"]

_WORDS = {
    "string_t": "a string",
    "integer_t": "an integer",
    "long_t": "an integer",
    "float_t": "a number",
    "boolean_t": "true or false",
}
_PYTHON = {
    "string_t": (str,),
    "integer_t": (int,),
    "long_t": (int,),
    "float_t": (int, float),
    "boolean_t": (bool,),
}
_BITS = {"integer_t": 32, "long_t": 64}
_CAPTIONS = {
    "datetime_t": "an RFC 3339 date and time",
    "email_t": "an email address",
    "hostname_t": "a host name",
    "ip_t": "an IP address",
    "mac_t": "a MAC address",
    "subnet_t": "a subnet in CIDR notation",
    "uuid_t": "a UUID",
}
_DATETIME_PARTS = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:Z|[+-](\d{2}):(\d{2}))?", re.ASCII
)

Check = Callable[[str], str | None]


@dataclass(frozen=True)
class TypeRule:
    """The rules for one OCSF type; ``format_problem`` says why a string breaks its format."""

    primitive: str
    python_types: tuple[type, ...]
    word: str
    caption: str
    max_len: int | None
    limits: tuple[int, int] | None
    pattern: re.Pattern[str] | None
    extra: Check | None

    @property
    def any_json(self) -> bool:
        return self.primitive == "json_t"

    @property
    def boolean(self) -> bool:
        return self.primitive == "boolean_t"

    def format_problem(self, value: str) -> str | None:
        if self.pattern is not None and self.pattern.fullmatch(value) is None:
            return "it does not match the type's pattern"
        return self.extra(value) if self.extra is not None else None


@functools.cache
def rule_for(type_name: str) -> TypeRule:
    """The rule for an OCSF type name (an unknown name gets a rule that accepts anything)."""
    primitive, max_len, limits, regex = TYPES.get(type_name, (type_name, None, None, None))
    if max_len is None and primitive == "string_t":
        max_len = TYPES["string_t"][1]
    bits = _BITS.get(primitive)
    if limits is None and bits is not None:
        limits = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return TypeRule(
        primitive=primitive,
        python_types=_PYTHON.get(primitive, (object,)),
        word=_WORDS.get(primitive, primitive),
        caption=_CAPTIONS.get(type_name, type_name),
        max_len=max_len,
        limits=limits,
        pattern=re.compile(regex, re.ASCII) if regex else None,
        extra=_EXTRA.get(type_name),
    )


def _ip(value: str) -> str | None:
    try:
        ipaddress.ip_address(value.strip())
    except ValueError:
        return "not an IPv4 or IPv6 address"
    return None


def _subnet(value: str) -> str | None:
    if "/" not in value:
        return "no /prefix_length"
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return "not an IPv4 or IPv6 network"
    return None


def _datetime(value: str) -> str | None:
    parts = _DATETIME_PARTS.fullmatch(value)
    if parts is None:
        return None  # the pattern already said so
    year, month, day, hour, minute, second = (int(p) for p in parts.groups()[:6])
    offset_hours, offset_minutes = (int(p or 0) for p in parts.groups()[6:])
    days = [31, 29 if _leap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    if not (1 <= month <= 12 and 1 <= day <= days[month - 1]):
        return "no such date"
    if hour > 23 or minute > 59 or second > 60 or offset_hours > 23 or offset_minutes > 59:
        return "no such time of day"
    return None


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


_EXTRA: dict[str, Check] = {"ip_t": _ip, "subnet_t": _subnet, "datetime_t": _datetime}
