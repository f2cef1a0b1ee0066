"""Cost of one fully populated Event Log Activity: build the model, to dict, to JSON bytes,
validate.

Run: ``.venv/bin/python bench/serialize.py`` (bench/run.py prints it too). The floor is the
encoder py-mdr itself uses, ``pydantic_core.to_json``, on the same final dict; ``json.dumps`` of
it is shown beside. Ratios matter; absolute times are noisy.
"""

from __future__ import annotations

import json
import timeit
from typing import Any

import pydantic_core

from py_mdr.ocsf_models import EventLogActivity
from py_mdr.serialize import to_dict, to_json_bytes
from py_mdr.validate import validate


def build() -> EventLogActivity:
    return EventLogActivity(
        message="user alice logged in from 192.0.2.7 after 2 attempts",
        time=1_722_513_600_123,
        severity_id=1,
        activity_id=99,
        log_name="app.auth",
        log_provider="py-mdr",
        log_type_id=2,
        metadata={
            "uid": "0f8fad5b-d9cb-469f-a165-70867728950e",
            "sequence": 42,
            "log_level": "INFO",
            "log_provider": "py-mdr",
            "log_version": "2.0.0",
            "logged_time": 1_722_513_600_125,
            "product": {"name": "billing", "vendor_name": "ACME.payments", "version": "1.4.2"},
        },
        actor={
            "process": {"pid": 4242, "name": "MainProcess", "tid": 4243},
            "user": {"name": "svc-billing"},
        },
        device={"hostname": "web-01.example.com", "type_id": 0},
        src_endpoint={"hostname": "web-01.example.com"},
        enrichments=[
            {
                "name": "file_information",
                "value": "/srv/app/auth.py:88",
                "data": {
                    "module": "auth",
                    "function_name": "login",
                    "line_number": 88,
                    "path": "/srv/app/auth.py",
                },
            }
        ],
        unmapped={
            "thread_name": "MainThread",
            "extra": {"request_id": "r-123", "tenant": "t-9", "attempts": 2},
        },
    )


def per_call_us(stmt: Any, number: int) -> float:
    best = min(timeit.repeat(stmt, number=number, repeat=5))
    return best / number * 1e6


def rows() -> list[tuple[str, float, float]]:
    """``(step, microseconds, x the floor)`` for each step."""
    model = build()
    final = to_dict(model)
    n = 2000
    steps = {
        "build model": per_call_us(build, n),
        "model -> dict (to_dict)": per_call_us(lambda: to_dict(model), n),
        "model -> JSON bytes (to_json_bytes)": per_call_us(lambda: to_json_bytes(model), n),
        "pydantic_core.to_json(final dict) [floor]": per_call_us(
            lambda: pydantic_core.to_json(final), n
        ),
        "json.dumps(final dict)": per_call_us(lambda: json.dumps(final), n),
        "model_dump_json (the same OCSF form)": per_call_us(
            lambda: model.model_dump_json(exclude_none=True), n
        ),
        "validate(model) (every schema rule)": per_call_us(lambda: validate(model), n),
    }
    floor = steps["pydantic_core.to_json(final dict) [floor]"]
    return [(name, us, us / floor) for name, us in steps.items()]


def main() -> None:
    print(f"Event Log Activity, {len(to_json_bytes(build()))} bytes of JSON")
    print(f"{'step':45} {'us':>8} {'x floor':>8}")
    for name, us, ratio in rows():
        print(f"{name:45} {us:8.2f} {ratio:8.2f}")


if __name__ == "__main__":
    main()
