"""Redaction: secrets found in what the application wrote are replaced before anything is sent.

Only text the application controls is scanned: the event's ``message`` and everything under
``unmapped`` (exception and stack text, ``extra=`` values, OpenTelemetry attributes and bodies),
plus the URL parts of HTTP events. OCSF structure (uids, hashes, times, class and type ids) is
never touched. A secret becomes ``[REDACTED:<kind>]``; the kinds found are added to
``metadata.labels`` as ``redacted:<kind>``.

Every rule is a regular expression without nested unbounded repetition, so a scan is linear in
the length of the text; a value whose key names a secret (``password``, ``api_key``, ...) is
replaced whole.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from py_mdr.config import ConfigError

__all__ = ["DEFAULT_RULES", "Redaction", "Redactor", "luhn_valid", "trie_pattern"]

#: kind -> (pattern, triggers). A pattern's group ``secret``, when it has one, is the part
#: replaced (the rest, e.g. ``password=`` or ``Bearer ``, stays as context). A rule runs only on
#: text whose lowercased form contains one of its triggers (the card rule: on a run of digits),
#: which keeps the usual message, holding none of them, cheap to pass.
DEFAULT_RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "private_key": (
        r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----[A-Za-z0-9+/=\s\\]*+"
        r"(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----)?",
        ("private key",),
    ),
    "jwt": (r"\beyJ[A-Za-z0-9_-]{8,}+\.[A-Za-z0-9_-]{8,}+\.[A-Za-z0-9_-]{8,}+", ("eyj",)),
    "aws_access_key_id": (
        r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z0-9]{16}\b",
        ("akia", "asia"),
    ),
    "aws_secret_access_key": (
        r"(?i:aws_?secret_?access_?key[\"']?\s{0,3}[=:]\s{0,3}[\"']?)"
        r"(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
        ("secret",),
    ),
    "github_token": (
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}+|github_pat_[A-Za-z0-9_]{22,}+)",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    "gitlab_token": (r"\bglpat-[A-Za-z0-9_-]{20,}+", ("glpat-",)),
    "slack_token": (r"\bxox[abposr]-[A-Za-z0-9-]{10,}+", ("xox",)),
    "slack_webhook": (r"https://hooks\.slack\.com/services/[A-Za-z0-9/]{20,}+", ("hooks.slack",)),
    "stripe_key": (r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}+", ("_live_", "_test_")),
    "google_api_key": (r"\bAIza[0-9A-Za-z_-]{35}", ("aiza",)),
    "bearer_token": (r"(?i:\bbearer\s{1,4})(?P<secret>[A-Za-z0-9._~+/=-]{8,}+)", ("bearer",)),
    "basic_auth": (r"(?i:\bbasic\s{1,4})(?P<secret>[A-Za-z0-9+/]{8,}+={0,2})", ("basic",)),
    "url_password": (
        r"\b[A-Za-z][A-Za-z0-9+.-]{0,20}://[^\s/:@]{1,256}:(?P<secret>[^\s/@]{1,256})@",
        ("://",),
    ),
    "secret_pair": (
        r"(?i:\b(?:password|passwd|pwd|secret|client_secret|token|access_token|refresh_token|"
        r"api[_-]?key|apikey|access[_-]?key|private[_-]?key)\b[\"']?\s{0,3}[=:]\s{0,3}[\"']?)"
        r"(?P<secret>[^\s\"'&,;]{1,512})",
        ("pass", "pwd", "secret", "token", "key"),
    ),
    "card_number": (
        r"(?<![\w-])(?P<secret>[2-6](?:[ -]?[0-9]){12,18}+)(?![\w-])",
        (),
    ),
}

#: Keys (of ``extra=`` fields, attributes, ...) whose whole value is a secret.
DEFAULT_SECRET_KEYS = (
    r"^(?:.*[_.-])?(?:password|passwd|pwd|secret|client_secret|token|access_token|"
    r"refresh_token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|authorization|"
    r"cookie|set[_-]cookie|session[_-]?id|credentials?)$"
)

# Keys under which values are structure (or py-mdr's own words), never application text.
_STRUCTURAL = frozenset(
    {
        "uid",
        "correlation_uid",
        "trace_id",
        "span_id",
        "parent_span_id",
        "trace_flags",
        "sequence",
        "time",
        "thread_name",
        "task_name",
    }
)
_SHORTEST = 5  # no rule matches less text than this (e.g. "pwd=x")
_SHORTEST_CARD = 13  # digits of the shortest card number
_REMEMBERED = 256  # texts up to this long found clean are remembered
_SCALARS = frozenset({str, int, float, bool, bytes})
_MAX_KEYS = 4096  # key names remembered as secret or not


def trie_pattern(words: Iterable[str]) -> str:
    """One regular expression finding any of ``words``, factored by common prefixes.

    ``a(?:kia|sia)`` instead of ``akia|asia``: the engine tries fewer branches at each
    position of the text, which is what the gate every scanned text passes costs. A word
    holding another one is left out (the shorter one finds the same texts).
    """
    unique = sorted(set(words))
    kept = [w for w in unique if w and not any(o != w and o in w for o in unique if o)]
    return _factor(kept)


def _factor(words: list[str]) -> str:
    if "" in words:  # a word ended here: what follows it is not needed to find it
        return ""
    by_first: dict[str, list[str]] = {}
    for word in words:
        by_first.setdefault(word[0], []).append(word[1:])
    branches = [re.escape(first) + _group(_factor(rest)) for first, rest in by_first.items()]
    return "|".join(branches)


def _group(pattern: str) -> str:
    return f"(?:{pattern})" if "|" in pattern else pattern


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum that every payment card number passes."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        number = ord(char) - 48
        if position % 2:
            number *= 2
            if number > 9:
                number -= 9
        total += number
    return total % 10 == 0


@dataclass(frozen=True)
class Redaction:
    """What to redact: a small immutable value, like :class:`~py_mdr.hec.retry.RetryPolicy`.

    ``enabled`` turns it all off; ``patterns`` adds rules (kind -> regular expression, optionally
    with a group named ``secret``); ``keys`` adds key names whose values are secrets (exact,
    case-insensitive); ``allow`` lists exact values that are never redacted; ``defaults=False``
    drops the built-in rules and key names.
    """

    enabled: bool = True
    patterns: Mapping[str, str] = field(default_factory=dict)
    keys: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    defaults: bool = True

    @classmethod
    def of(cls, value: object) -> Redaction:
        """The argument ``redact=``: True/False, a Redaction, or a dict of its fields."""
        if isinstance(value, Redaction):
            return value
        if value is None or value is True:
            return cls()
        if value is False:
            return cls(enabled=False)
        if isinstance(value, Mapping):
            try:
                fields = dict(value)
                for name in ("keys", "allow"):
                    if name in fields:
                        fields[name] = tuple(fields[name])
                return cls(**fields)
            except TypeError as error:
                raise ConfigError(
                    f"redact: {error}; give True, False, a Redaction or a dict of its fields "
                    "(enabled, patterns, keys, allow, defaults)"
                ) from None
        raise ConfigError(
            f"redact must be True, False, a Redaction or a dict of its fields, got {value!r}"
        )


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    triggers: tuple[str, ...]  # lowercase; none: the rule looks for digits (or always runs)
    digits: bool = False


# What the gate looks for on behalf of the card rule: a first digit the rule accepts, then as many
# digits, spaces and dashes as the shortest card number holds. Every match of the rule starts with
# one. Spelled as one branch per first digit: a gate whose branches all start with a literal
# character lets the engine skip ahead to the next position where one of them can start.
_CARD_RUN = "|".join(f"{first}[0-9 -]{{12}}" for first in "23456")
_CARD_LENGTH = re.compile(r"[0-9](?:[ -]?[0-9]){12}")


class Redactor:
    """Applies a :class:`Redaction` to event dicts; counts what it replaced, by kind."""

    def __init__(self, redaction: Redaction, literals: Iterable[str] = ()) -> None:
        """Compile ``redaction``'s rules once; ``literals`` (the token) are replaced anywhere."""
        rules: list[_Rule] = []
        defaults = DEFAULT_RULES if redaction.defaults else {}
        for kind, (pattern, triggers) in defaults.items():
            rules.append(_Rule(kind, re.compile(pattern), triggers, digits=not triggers))
        for kind, pattern in redaction.patterns.items():
            try:
                rules.append(_Rule(kind, re.compile(pattern), ()))
            except re.error as error:
                raise ConfigError(f"redact: pattern {kind!r} is not valid: {error}") from None
        for literal in literals:  # e.g. the HEC token itself
            if literal and len(literal) >= 6:
                escaped = re.compile(re.escape(literal))
                rules.append(_Rule("hec_token", escaped, (literal.lower(),)))
        self._rules = tuple(rules)
        triggers = tuple(sorted({t for rule in rules for t in rule.triggers}))
        self._always = any(not rule.triggers and not rule.digits for rule in rules)
        self._cards = any(rule.digits for rule in rules)
        # One search decides whether any rule could match: the triggers (on the lowercased
        # text) and the card rule's run of digits (which lowercasing leaves as it is).
        gate = [trie_pattern(triggers)] if triggers else []
        gate += [_CARD_RUN] if self._cards else []
        self._gate = re.compile("|".join(gate)) if gate else None
        keys = [DEFAULT_SECRET_KEYS] if redaction.defaults else []
        keys += [f"^{re.escape(key)}$" for key in redaction.keys]
        self._keys = re.compile("|".join(f"(?:{k})" for k in keys), re.I) if keys else None
        self._allow = frozenset(redaction.allow)
        self._secret_keys: dict[str, bool] = {}
        self._clean: dict[str, None] = {}  # short texts known to hold no secret
        self.enabled = redaction.enabled and bool(rules or keys)
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def counts(self) -> dict[str, int]:
        """Secrets replaced so far, by kind (values replaced whole: ``secret_field``)."""
        with self._lock:
            return dict(self._counts)

    def looks_clean(self, value: str) -> bool:
        """True when no rule could match anything in ``value`` (the check :meth:`text` starts
        with): a caller holding only plain text may skip the rest. Short texts found clean are
        remembered (URL parts and queries repeat)."""
        if len(value) < _SHORTEST:
            return True
        clean = self._clean
        if value in clean:
            return True
        if self._always:
            return False
        gate = self._gate
        if gate is not None and gate.search(value.lower()) is not None:
            return False
        if len(value) <= _REMEMBERED:
            if len(clean) >= _MAX_KEYS:
                clean.clear()
            clean[value] = None
        return True

    def text(self, value: str, found: dict[str, int]) -> str:
        """``value`` with every secret replaced; what was found is counted in ``found``."""
        if self.looks_clean(value):
            return value  # the usual value: nothing that looks like a secret
        return self._replace(value, found)

    def message(self, value: str, found: dict[str, int]) -> str:
        """:meth:`text` for a log message or a stack: not remembered when clean. A message
        rarely comes again word for word, and one that does, often, is folded (its repeats
        never get here); remembering every message would only churn the memory."""
        if len(value) < _SHORTEST:
            return value
        if not self._always:
            gate = self._gate
            if gate is None or gate.search(value.lower()) is None:
                return value
        return self._replace(value, found)

    def _replace(self, value: str, found: dict[str, int]) -> str:
        lower = value.lower()
        cards = (
            self._cards and len(value) >= _SHORTEST_CARD and _CARD_LENGTH.search(value) is not None
        )
        for rule in self._rules:
            if rule.digits:
                if not cards:
                    continue
            elif rule.triggers:
                for trigger in rule.triggers:
                    if trigger in lower:
                        break
                else:
                    continue
            replaced = self._apply(rule, value, found)
            if replaced is not value:
                value = replaced
                lower = value.lower()
        return value

    def _apply(self, rule: _Rule, value: str, found: dict[str, int]) -> str:
        hits = 0

        def replace(match: re.Match[str]) -> str:
            nonlocal hits
            whole = match.group(0)
            start, end = match.span()
            if "secret" in match.re.groupindex and match.group("secret") is not None:
                start, end = match.span("secret")
            secret = value[start:end]
            if whole in self._allow or secret in self._allow:
                return whole
            if rule.kind == "card_number":
                digits = secret.replace(" ", "").replace("-", "")
                if not (13 <= len(digits) <= 19 and luhn_valid(digits)):
                    return whole
            hits += 1
            offset = match.start()
            return f"{whole[: start - offset]}[REDACTED:{rule.kind}]{whole[end - offset :]}"

        result = rule.pattern.sub(replace, value)
        if not hits:
            return value
        found[rule.kind] = found.get(rule.kind, 0) + hits
        return result

    def tree(self, value: Any, found: dict[str, int]) -> Any:
        """``value`` with secrets replaced; dicts and lists are walked, and copied only where
        something changed (the application's own objects are never modified)."""
        kind = type(value)
        if kind is str:
            return self.text(value, found)
        if kind is dict:
            changed: dict[Any, Any] | None = None
            known = self._secret_keys
            clean = self._clean
            for key, item in value.items():
                kind = type(item)
                # the usual entry, decided from the two caches: a key known to name no
                # secret, and a number or a text too short for any rule or known clean
                if known.get(key) is False and (
                    kind is int or (kind is str and (len(item) < _SHORTEST or item in clean))
                ):
                    continue
                if type(key) is str and key in _STRUCTURAL:
                    continue
                if kind in _SCALARS:
                    if self._is_secret_field(key, item):
                        new: Any = "[REDACTED:secret_field]"
                        found["secret_field"] = found.get("secret_field", 0) + 1
                    elif kind is str and len(item) >= _SHORTEST:
                        new = self.text(item, found)
                    else:
                        continue
                elif kind is dict or kind is list:
                    new = self.tree(item, found)
                else:
                    continue
                if new is not item:
                    if changed is None:
                        changed = dict(value)
                    changed[key] = new
            return value if changed is None else changed
        if kind is list:
            items = [self.tree(item, found) for item in value]
            if all(new is old for new, old in zip(items, value, strict=True)):
                return value
            return items
        return value

    def _is_secret_field(self, key: Any, item: Any) -> bool:
        keys = self._keys
        if keys is None or type(key) is not str or item in ("", b"") or type(item) is bool:
            return False
        secret = self._secret_keys.get(key)
        if secret is None:
            secret = keys.search(key) is not None
            if len(self._secret_keys) >= _MAX_KEYS:
                self._secret_keys.clear()
            self._secret_keys[key] = secret
        return secret and str(item) not in self._allow

    def event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Redact an event dict in place (message, unmapped, URL parts) and label it."""
        if not self.enabled:
            return event
        found: dict[str, int] = {}
        message = event.get("message")
        if type(message) is str:
            event["message"] = self.message(message, found)
        unmapped = event.get("unmapped")
        if unmapped:
            event["unmapped"] = self.tree(unmapped, found)
        for holder in ("http_request", "api"):
            part = event.get(holder)
            if type(part) is dict and part:
                event[holder] = self.tree(part, found)
        if found:
            metadata = event.setdefault("metadata", {})
            metadata["labels"] = [*(metadata.get("labels") or []), *self.note(found)]
        return event

    def note(self, found: dict[str, int]) -> list[str]:
        """Count what one event had redacted; its labels (``redacted:<kind>``) for metadata."""
        with self._lock:
            for kind, count in found.items():
                self._counts[kind] = self._counts.get(kind, 0) + count
        return [f"redacted:{kind}" for kind in sorted(found)]
