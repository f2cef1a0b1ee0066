"""Fixtures shared by the test files: a real HEC receiver on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from py_mdr.sink import HECSink


@pytest.fixture
def sink() -> Iterator[HECSink]:
    """A started receiver on an ephemeral port accepting the token "test-token"; stopped after."""
    with HECSink(token="test-token") as receiver:
        yield receiver
