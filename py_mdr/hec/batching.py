"""Envelopes into request bodies of bounded size and count.

An envelope over the per-event limit (HEC refuses events over 5 MB) is set aside and counted as
"oversize", so that it neither blocks nor sinks the envelopes around it. One larger than a
normal body but within that limit travels alone in a body of its own.
"""

from __future__ import annotations

from collections.abc import Sequence


def plan_bodies(
    envelopes: Sequence[bytes],
    *,
    max_body_bytes: int,
    max_batch_events: int,
    max_event_bytes: int,
) -> tuple[list[list[bytes]], int]:
    """Group ``envelopes`` (in order) into bodies; returns (bodies, number of oversize envelopes).

    A body's size counts the newline between envelopes.
    """
    max_events = max(1, max_batch_events)
    bodies: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    oversize = 0
    for envelope in envelopes:
        length = len(envelope)
        if length > max_event_bytes:
            oversize += 1
            continue
        if current and (size + 1 + length > max_body_bytes or len(current) >= max_events):
            bodies.append(current)
            current, size = [], 0
        size += length + (1 if current else 0)
        current.append(envelope)
    if current:
        bodies.append(current)
    return bodies, oversize


def join_body(envelopes: Sequence[bytes]) -> bytes:
    """The request body: envelopes separated by newlines (never a JSON array)."""
    return b"\n".join(envelopes)
