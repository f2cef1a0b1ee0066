"""Reading HEC answers defensively: bodies may be JSON, empty, plain text or a proxy's HTML page."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_TAGS = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_MAX_TEXT = 200


@dataclass(frozen=True)
class HECAnswer:
    """What one HEC response said, as far as it could be understood."""

    hec_code: int | None = None
    text: str = ""
    invalid_event_number: int | None = None
    ack_id: int | None = None
    acks: dict[int, bool] | None = None  # the ack endpoint's answer
    html: bool = False  # the body was markup (a proxy's page), not JSON
    is_json: bool = False  # the body was a JSON object, HEC's or not


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _plain(body: bytes) -> str:
    """A short one-line text for a non-JSON body (HTML tags and runs of space removed)."""
    text = body[: _MAX_TEXT * 8].decode("utf-8", "replace")
    text = _SPACE.sub(" ", _TAGS.sub(" ", text)).strip()
    return text[:_MAX_TEXT]


def parse_answer(body: bytes) -> HECAnswer:
    """Parse a HEC response body; never raises, whatever the body holds."""
    if not body or not body.strip():
        return HECAnswer()
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return HECAnswer(text=_plain(body), html=body.lstrip()[:1] == b"<")
    if not isinstance(data, dict):
        return HECAnswer(text=_plain(body))
    text = data.get("text")
    acks = data.get("acks")
    parsed_acks: dict[int, bool] | None = None
    if isinstance(acks, dict):
        parsed_acks = {}
        for key, value in acks.items():
            number = _int(key)
            if number is not None:
                parsed_acks[number] = value is True
    return HECAnswer(
        hec_code=_int(data.get("code")),
        text=text[:_MAX_TEXT] if isinstance(text, str) else "",
        invalid_event_number=_int(data.get("invalid-event-number")),
        ack_id=_int(data.get("ackId")),
        acks=parsed_acks,
        is_json=True,
    )
