"""Fixtures shared by the test files: a real HEC receiver on loopback, loggers to attach to."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator

import pytest
from hypothesis import settings

from py_mdr.sink import HECSink

# In CI the property tests draw the same examples on every run, so a landing never hangs on a
# lucky draw; on a developer's machine they keep exploring (and keep what they find in
# .hypothesis/, where a failure is replayed first).
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``MDR_*`` setting of the shell running the tests leaks into them."""
    for name in list(os.environ):
        if name.startswith("MDR_"):
            monkeypatch.delenv(name)


@pytest.fixture
def sink() -> Iterator[HECSink]:
    """A started receiver on an ephemeral port accepting the token "test-token"; stopped after."""
    with HECSink(token="test-token") as receiver:
        yield receiver


@pytest.fixture
def attach() -> Iterator[Callable[[logging.Handler, str], logging.Logger]]:
    """Attach a handler to a fresh, non-propagating logger; closed and detached afterwards."""
    attached: list[tuple[logging.Logger, logging.Handler]] = []

    def attach_(handler: logging.Handler, name: str) -> logging.Logger:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        logger.addHandler(handler)
        attached.append((logger, handler))
        return logger

    yield attach_
    for logger, handler in attached:
        logger.removeHandler(handler)
        handler.close()
