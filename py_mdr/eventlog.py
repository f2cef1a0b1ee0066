"""What every mapped log line shares: the fixed part of an OCSF Event Log Activity and its helpers.

Both front doors (``py_mdr.logmap`` for stdlib records, ``py_mdr_otel.mapping`` for OTel records)
build plain dicts already in their serialized form (ints, epoch milliseconds, captions filled, no
empty values) from these pieces, so the same log line looks the same whichever door it came in by.
Nothing here validates: the mappings build what the schema asks for by construction.
See https://schema.ocsf.io/1.3.0/classes/event_log
"""

from __future__ import annotations

import functools
import getpass
import itertools
import os
import random
import re
import socket
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from py_mdr.config import resolve_product_name, resolve_vendor_name
from py_mdr.plain import clean, dumps, json_safe, prune, safe_str
from py_mdr.time_units import suspect_unit

OCSF_VERSION = "1.3.0"
LOG_PROVIDER = "py-mdr"
CLASS_UID = 1008
ACTIVITY_ID = 99
TYPE_UID = CLASS_UID * 100 + ACTIVITY_ID

_HOSTNAME = re.compile(
    r"^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*"
    r"([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9])$"
)


#: The attributes every Event Log Activity made from a log line carries; never mutate it, copy
#: it into a new event with ``{**FIXED_PART, ...}``.
FIXED_PART: Mapping[str, Any] = {
    "class_uid": CLASS_UID,
    "class_name": "Event Log Activity",
    "category_uid": 1,
    "category_name": "System Activity",
    "activity_id": ACTIVITY_ID,
    "activity_name": "Log",
    "type_uid": TYPE_UID,
    "type_name": "Event Log Activity: Other",
    "log_type_id": 2,
    "log_type": "Application",
    "log_provider": LOG_PROVIDER,
}


# Event identity -------------------------------------------------------------------------------

_sequence = itertools.count(1)
# UIDs come from a private generator, so a program seeding ``random`` cannot make them repeat;
# they only serve de-duplication, so a fast non-cryptographic source is enough. Reseeded in a
# forked child, so parent and child never share a stream.
_uid_source = random.Random()
_random_bits = _uid_source.getrandbits
_SEQUENCE_BITS = 48
_SEQUENCE_MASK = (1 << _SEQUENCE_BITS) - 1


def _new_uid_prefix() -> str:
    """74 random bits in a version 8 (RFC 9562), RFC 4122 variant UUID's first four groups."""
    return "%08x-%04x-8%03x-%04x-" % (  # noqa: UP031 (%-format is 1.6x an f-string here)
        _random_bits(32),
        _random_bits(16),
        _random_bits(12),
        _random_bits(14) | 0x8000,
    )


_uid_prefix = _new_uid_prefix()


def _after_fork_in_child() -> None:
    global _uid_prefix
    _uid_source.seed()
    _uid_prefix = _new_uid_prefix()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def sequence_counter() -> Iterator[int]:
    """The iterator behind :func:`next_sequence`, for a caller that cannot spare a call."""
    return _sequence


def next_sequence() -> int:
    """The next per-process event number (gaps downstream mean lost events)."""
    return next(_sequence)


def event_uid(sequence: int) -> str:
    """``metadata.uid`` of the event with this process's ``sequence`` number: a UUID string.

    A version 8 UUID: 74 random bits drawn once per process (again in a forked child), then the
    sequence in the last 48 bits. Unique like a random UUID (two processes share a prefix with
    odds of 2**-74), the same for the same event however often it is sent (retries, spool), and
    cheap on the wire: within a batch gzip sends the shared prefix once and each uid in a few
    bytes, where 122 random bits per event cost about 16 bytes that no compressor can shrink.
    """
    return _uid_prefix + "%012x" % (sequence & _SEQUENCE_MASK)


def new_uid() -> str:
    """A random (version 4, RFC 4122 variant) UUID string, ~6x cheaper than ``uuid.uuid4()``.

    For events with no sequence number of this process. The 122 random bits come in the five
    groups' own sizes, so no big integer is cut apart; the version digit is written as ``4``
    and the variant bits ``10`` are set on the fourth group.
    """
    return "%08x-%04x-4%03x-%04x-%012x" % (  # noqa: UP031 (%-format is 1.6x an f-string here)
        _random_bits(32),
        _random_bits(16),
        _random_bits(12),
        _random_bits(14) | 0x8000,
        _random_bits(48),
    )


# Things about this process, looked up once ----------------------------------------------------


@functools.cache
def host_name() -> str:
    """This machine's host name (looked up once)."""
    try:
        name = socket.gethostname()
    except OSError:
        name = ""
    return name or os.environ.get("HOSTNAME", "") or "localhost"


@functools.cache
def os_user() -> dict[str, str]:
    """OCSF ``user`` for the operating-system user; never raises (containers may have no name)."""
    try:
        name = getpass.getuser()
    except Exception:  # no passwd entry and no LOGNAME/USER: fall back to the numeric id
        name = ""
    if name:
        return {"name": name}
    getuid = getattr(os, "getuid", None)
    return {"uid": str(getuid())} if getuid is not None else {}


@functools.cache
def program_name() -> str:
    """The running program's name, as a product name of last resort."""
    argv0 = sys.argv[0] if sys.argv else ""
    if not argv0 or argv0 == "-c":
        return "python"
    base = os.path.basename(argv0.rstrip("/\\"))
    stem, ext = os.path.splitext(base)
    if ext == ".py":
        base = stem
    if base == "__main__":  # python -m package
        base = os.path.basename(os.path.dirname(argv0)) or base
    return base or "python"


@functools.lru_cache(maxsize=256)
def _host_key(name: str) -> str:
    # OCSF hostname_t has a pattern; a name outside it (an underscore, say) goes to `name`.
    return "hostname" if _HOSTNAME.match(name) else "name"


@functools.cache
def local_host() -> tuple[str, str]:
    """``(host name, key)``: the local host name and the OCSF attribute it fits (cached)."""
    name = host_name()
    return name, _host_key(name)


def device(hostname: str) -> dict[str, Any]:
    """A new OCSF ``device`` for a host name; ``type_id`` 0, as nothing says what the host is."""
    return {_host_key(hostname): hostname, "type_id": 0, "type": "Unknown"}


def endpoint(hostname: str) -> dict[str, Any]:
    """A new OCSF ``network_endpoint`` naming a host."""
    return {_host_key(hostname): hostname}


#: The attributes of OCSF 1.3.0 ``product`` (a dict given as a product may use only these).
PRODUCT_KEYS = (
    "cpe_name",
    "data_classification",
    "feature",
    "lang",
    "name",
    "path",
    "uid",
    "url_string",
    "vendor_name",
    "version",
)

_PRODUCT_TEXT = frozenset(
    {"name", "version", "uid", "vendor_name", "lang", "path", "cpe_name", "url_string"}
)


def default_product(product: Any = None) -> dict[str, Any]:
    """OCSF ``product`` to send: the given one (a mapping or an OCSF model) or the defaults.

    Without a product: ``name`` from ``MDR_PRODUCT_NAME`` else the program's name. The vendor
    name is required by OCSF, so a missing one becomes ``MDR_VENDOR_NAME`` else ``unknown``.
    """
    try:
        result = prune(json_safe(product)) if product is not None else {}
    except Exception:  # a mapping whose items() itself fails
        result = {}
    if not isinstance(result, dict):
        result = {}
    for key in _PRODUCT_TEXT.intersection(result):
        value = result[key]
        if not isinstance(value, str):  # a version given as 2 or 1.5: the schema wants text
            result[key] = (
                safe_str(value) if not isinstance(value, (dict, list)) else dumps(value).decode()
            )
    if not result.get("name") and not result.get("uid"):
        result["name"] = resolve_product_name() or program_name()
    if not result.get("vendor_name"):
        result["vendor_name"] = resolve_vendor_name() or "unknown"
    return result


def metadata(
    product: dict[str, Any],
    log_version: str,
    sequence: int,
    logged_time: int | None,
    log_level: Any,
) -> dict[str, Any]:
    """A new OCSF ``metadata`` for one mapped log line (fresh ``uid`` included)."""
    result = metadata_fixed(product, log_version)
    result.update(metadata_event(sequence, logged_time, log_level))
    return result


def metadata_fixed(product: dict[str, Any], log_version: str) -> dict[str, Any]:
    """The part of ``metadata`` all events from one source share (a mapping may encode it once)."""
    result: dict[str, Any] = {
        "version": OCSF_VERSION,
        "product": product,
        "log_provider": LOG_PROVIDER,
    }
    if log_version:
        result["log_version"] = log_version
    return result


def metadata_event(sequence: int, logged_time: int | None, log_level: Any) -> dict[str, Any]:
    """The part of ``metadata`` that is new for every event: ``uid``, sequence, times, level."""
    result: dict[str, Any] = {"uid": event_uid(sequence), "sequence": sequence}
    if logged_time is not None:
        result["logged_time"] = logged_time
    level = log_level if type(log_level) is str else clean_text(log_level)
    if level:
        result["log_level"] = level
    return result


# Shared pieces of a mapped record -------------------------------------------------------------


def file_information(path: Any, function: Any, line: Any, module: Any = None) -> dict[str, Any]:
    """The ``file_information`` enrichment earlier py-mdr releases sent, or ``{}`` if nothing known.

    ``value`` is ``<path>:<line>``; ``data`` holds module, function name, line number and path.
    A log call site repeats, so the usual (text, text, int) case is worked out once per site.
    """
    if type(path) is str and type(function) is str and type(line) is int and module is None:
        value, data = _site(path, function, line)
        return {"name": "file_information", "value": value, "data": dict(data)}
    path = path if isinstance(path, str) else (safe_str(path) if path is not None else "")
    line = line if type(line) is int else _as_int(line)
    if module is None and path:
        module = _module_of(path)
    data = prune(
        {
            "module": module if isinstance(module, str) else json_safe(module),
            "function_name": function if isinstance(function, str) else json_safe(function),
            "line_number": line,
            "path": path,
        }
    )
    if not data:
        return {}
    if path:
        value = f"{path}:{line}" if line is not None else path
    else:
        value = str(data.get("function_name") or data.get("module") or line)
    return {"name": "file_information", "value": value, "data": data}


@functools.lru_cache(maxsize=4096)
def _site(path: str, function: str, line: int) -> tuple[str, dict[str, Any]]:
    """``(value, data)`` of one call site; callers copy ``data`` before handing it out."""
    data = prune(
        {"module": _module_of(path), "function_name": function, "line_number": line, "path": path}
    )
    return (f"{path}:{line}" if path else function or str(line)), data


@functools.lru_cache(maxsize=1024)
def _module_of(path: str) -> str:
    # What logging calls a record's module: the file name without its extension.
    return os.path.splitext(os.path.basename(path))[0]


def _as_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def exception_info(kind: Any, message: Any, stacktrace: Any) -> dict[str, Any]:
    """``unmapped.exception``: type, message and stack trace as text, empty parts left out."""
    result: dict[str, Any] = prune(
        {
            "type": kind if isinstance(kind, str) else json_safe(kind),
            "message": message if isinstance(message, str) else json_safe(message),
            "stacktrace": stacktrace.rstrip()
            if isinstance(stacktrace, str)
            else json_safe(stacktrace),
        }
    )
    return result


# JSON-safety and pruning (prune and clean live in py_mdr.serialize) ------------------------

#: OCSF ``string_t`` holds at most this many characters.
MAX_STRING = 65_535


#: The most of a long message kept in ``unmapped.message``: even as JSON escapes (up to six
#: bytes a character) it leaves the event under HEC's 5 MB, so the event is sent, not dropped.
MAX_KEPT = 700_000


def fit_message(event: dict[str, Any], unmapped: dict[str, Any], text: str) -> None:
    """Set ``message``; a text too long for ``string_t`` is cut there and kept in unmapped (up
    to :data:`MAX_KEPT` characters; beyond, ``unmapped.message_length`` says how long it was)."""
    if len(text) > MAX_STRING:
        if len(text) > MAX_KEPT:
            unmapped["message"] = text[: MAX_KEPT - 1] + "\u2026"
            unmapped["message_length"] = len(text)
        else:
            unmapped["message"] = text
        text = text[: MAX_STRING - 1] + "\u2026"
    event["message"] = text


def clean_text(value: Any) -> str | None:
    """A value as non-empty text, or ``None``; never raises."""
    if type(value) is str:
        return value or None
    if value is None:
        return None
    return safe_str(value) or None


def clean_mapping(items: Mapping[Any, Any]) -> dict[str, Any]:
    """A mapping of arbitrary values as a JSON-safe dict without empty entries; never raises."""
    out: dict[str, Any] = {}
    try:
        pairs = list(items.items())
    except Exception:
        return out
    for key, value in pairs:
        value = clean(value)
        if value is not None:
            out[key if type(key) is str else safe_str(key)] = value
    return out


def ms_from_seconds(seconds: Any) -> int | None:
    """OCSF ``timestamp_t`` (integer ms) from POSIX seconds; ``None`` if it is no finite number,
    or so far off that it reads as another unit (the caller then falls back to now)."""
    if type(seconds) is float or (isinstance(seconds, (int, float)) and type(seconds) is not bool):
        try:
            ms = int(seconds * 1000)
        except (ValueError, OverflowError):  # NaN, infinity
            return None
        if not -(2**63) <= ms < 2**63 or suspect_unit(ms) is not None:
            return None
        return ms
    return None


def envelope_time(event: Mapping[str, Any]) -> float:
    """The HEC envelope ``time``: the event's ``time`` in seconds, millisecond precision."""
    return float(event["time"]) / 1000


def error_text(error: BaseException) -> str:
    """``Type: message`` for an error noted in an event; never raises (``__str__`` may)."""
    return f"{type(error).__name__}: {safe_str(error)}"


def fallback_event(
    error: BaseException,
    *,
    product: dict[str, Any],
    log_version: str,
    sequence: int,
    severity: tuple[int, str],
    time_ms: int,
    logged_time: int | None = None,
    log_level: Any = None,
    process: dict[str, Any] | None = None,
    log_name: Any = None,
    message: Any = None,
) -> dict[str, Any]:
    """The minimal valid event either door sends when a record defeats its normal mapping.

    One shape for both doors: the fixed part, what little is known, and the error under
    ``unmapped.mapping_error``, so nothing is silently lost.
    """
    host = host_name()
    unmapped: dict[str, Any] = {"mapping_error": error_text(error)}
    event: dict[str, Any] = {
        **FIXED_PART,
        "severity_id": severity[0],
        "severity": severity[1],
        "time": time_ms,
        "metadata": metadata(product, log_version, sequence, logged_time, log_level),
        "actor": {"process": process or {"pid": os.getpid()}},
        "device": device(host),
        "src_endpoint": endpoint(host),
        "unmapped": unmapped,
    }
    name = clean_text(log_name)
    if name:
        event["log_name"] = name
    text = clean_text(message)
    if text:
        fit_message(event, unmapped, text)
    return event
