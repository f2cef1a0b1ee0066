"""Where the examples send: the endpoint in MDR_HOST / MDR_TOKEN, else a local HEC receiver."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from py_mdr.sink import HECSink


@contextmanager
def mdr_endpoint() -> Iterator[HECSink | None]:
    """Yield ``None`` when MDR_HOST and MDR_TOKEN are set; otherwise start a local receiver,
    point those variables at it for the duration, and yield it so the example can show what
    arrived."""
    if os.environ.get("MDR_HOST") and os.environ.get("MDR_TOKEN"):
        yield None
        return
    with HECSink(token="example-token") as sink:
        print(f"MDR_HOST/MDR_TOKEN not set: sending to a local receiver at {sink.url}")
        os.environ["MDR_HOST"], os.environ["MDR_TOKEN"] = sink.url, sink.token
        try:
            yield sink
        finally:
            del os.environ["MDR_HOST"], os.environ["MDR_TOKEN"]
