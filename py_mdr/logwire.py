"""A queued log item straight to the JSON bytes of its OCSF Event Log Activity.

The handler's hot path: the event :func:`py_mdr.logmap.item_to_event` builds (then redacted as
:meth:`~py_mdr.processing.redact.Redactor.event` would), written without building it. What is
constant per handler (class, product, versions) or per process (host, user) is encoded once,
what a call site repeats (file, function, line) is cached, and per record only the times, ids,
message and ``unmapped`` values are encoded. An item that needs care (an unusual attribute type,
a folded run, a time given by structlog, text that is not UTF-8) gives ``None`` and takes the
dict path instead, which sends the same event.
"""

from __future__ import annotations

from typing import Any

from py_mdr.eventlog import (
    FIXED_PART,
    LOG_PROVIDER,
    OCSF_VERSION,
    default_product,
    device,
    endpoint,
    event_uid,
    file_information,
    local_host,
    os_user,
)
from py_mdr.logmap import EVENT_TIME, LogItem, is_plain, plain_extra
from py_mdr.plain import dumps, safe_str
from py_mdr.processing.redact import Redactor
from py_mdr.severity import from_python_level

__all__ = ["LogWire"]

_MAX_CACHED = 4096  # call sites, names and levels remembered; more start the cache afresh
_UNSET = object()  # no product seen yet


class LogWire:
    """Encodes the items of one handler (its product, its log version, its redactor)."""

    def __init__(self, product: Any, log_version: str, redactor: Redactor | None) -> None:
        """``redactor`` (None: redaction off) is applied as the dict path applies it."""
        self._log_version = log_version
        self._redactor = redactor
        self._product: Any = _UNSET
        self._metadata = b""
        self._head = b"{" + dumps(FIXED_PART)[1:-1]
        self._levels: dict[int, bytes] = {}
        self._texts: dict[str, bytes] = {}
        self._sites: dict[tuple[str, int, str, str], bytes] = {}
        self._process: dict[int, bytes] = {}

    def encode(self, item: LogItem, product: Any) -> bytes | None:
        """The event's JSON bytes, or None when the item must take the dict path."""
        (
            name,
            levelno,
            levelname,
            pathname,
            lineno,
            function,
            module,
            created,
            pid,
            process_name,
            thread_name,
            stack,
            task_name,
            message,
            captured,
            extra,
            _,  # exc_text: the exception's summary in ``captured`` holds it
            _,  # context: only processors read it, and with processors this path is off
            repeat,
        ) = item
        if not (
            repeat is None
            and self._log_version
            and type(levelno) is int
            and (extra is None or EVENT_TIME not in extra)
            and is_plain(item)
        ):
            return None
        sequence, tid, logged, exception = captured
        if type(tid) is not int or type(logged) is not float:
            return None
        if product is not self._product:
            self._use_product(product)

        # ``unmapped`` as the dict path builds it; redacted part by part (the thread and task
        # names are py-mdr's structure, which redaction leaves alone)
        redactor = self._redactor
        found: dict[str, int] = {}
        if redactor is not None:
            message = redactor.message(message, found)
        unmapped: dict[str, Any] = {"thread_name": thread_name}
        if exception:  # the item's own dict: read here, never changed
            unmapped["exception"] = redactor.tree(exception, found) if redactor else exception
        if stack:
            stack = stack if type(stack) is str else safe_str(stack)
            unmapped["stack"] = redactor.message(stack, found) if redactor else stack
        if task_name:
            unmapped["task_name"] = task_name if type(task_name) is str else safe_str(task_name)
        if extra:
            fields = plain_extra(extra)
            if fields:
                unmapped["extra"] = redactor.tree(fields, found) if redactor else fields
        labels = b',"labels":' + dumps(redactor.note(found)) if found and redactor else b""

        texts = self._texts
        try:
            message_json = dumps(message)
            name_json = texts.get(name) or self._text(name)
            level_json = texts.get(levelname) or self._text(levelname)
            process_json = texts.get(process_name) or self._text(process_name)
        except Exception:  # a str subclass whose encoding misbehaves: the careful path
            return None
        severity = self._levels.get(levelno) or self._severity(levelno)
        site = self._sites.get((pathname, lineno, function, module)) or self._site(
            pathname, lineno, function, module
        )
        host_and_user = self._process.get(pid) or self._host_and_user(pid)
        return b"".join(
            (
                self._head,
                severity,
                b',"time":%d,"message":' % int(created * 1000),
                message_json,
                b',"log_name":',
                name_json,
                self._metadata,
                b',"uid":"%s","sequence":%d,"logged_time":%d,"log_level":'
                % (event_uid(sequence).encode(), sequence, int(logged * 1000)),
                level_json,
                labels,
                b'},"actor":{"process":{"pid":%d,"tid":%d,"name":' % (pid, tid),
                process_json,
                host_and_user,
                site,
                dumps(unmapped),
                b"}",
            )
        )

    def _use_product(self, product: Any) -> None:
        self._product = product
        self._metadata = (
            b',"metadata":{"version":'
            + dumps(OCSF_VERSION)
            + b',"product":'
            + dumps(default_product(product))
            + b',"log_provider":'
            + dumps(LOG_PROVIDER)
            + b',"log_version":'
            + dumps(self._log_version)
        )

    def _text(self, text: str) -> bytes:
        encoded = dumps(text)
        if len(self._texts) >= _MAX_CACHED:
            self._texts.clear()
        self._texts[text] = encoded
        return encoded

    def _severity(self, levelno: int) -> bytes:
        severity_id, severity = from_python_level(levelno)
        encoded = b',"severity_id":%d,"severity":%s' % (severity_id, dumps(severity))
        if len(self._levels) >= _MAX_CACHED:
            self._levels.clear()
        self._levels[levelno] = encoded
        return encoded

    def _site(self, pathname: str, lineno: int, function: str, module: str) -> bytes:
        """``"enrichments"`` for a call site, then the start of ``"unmapped"``."""
        enrichment = file_information(pathname, function, lineno, module)
        encoded = b',"enrichments":[' + dumps(enrichment) + b'],"unmapped":'
        if len(self._sites) >= _MAX_CACHED:
            self._sites.clear()
        self._sites[pathname, lineno, function, module] = encoded
        return encoded

    def _host_and_user(self, pid: int) -> bytes:
        """The end of ``"actor"`` (its user), then ``"device"`` and ``"src_endpoint"``."""
        host, _ = local_host()
        user = os_user()
        encoded = b"}"
        if user:
            encoded += b',"user":' + dumps(user)
        encoded += (
            b'},"device":' + dumps(device(host)) + b',"src_endpoint":' + dumps(endpoint(host))
        )
        if len(self._process) >= 8:  # one per process; a fork adds one
            self._process.clear()
        self._process[pid] = encoded
        return encoded
