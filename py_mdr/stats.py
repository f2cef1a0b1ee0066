"""One ``stats`` shape on every door: a property whose snapshot may also be called.

py-mdr 2.0 spelled it two ways: ``handler.stats`` (a property) and ``client.stats()`` /
``exporter.stats()`` (methods). Every door now has the property, and each snapshot type derives
from :class:`Snapshot`, whose ``__call__`` returns the snapshot itself, so code written either
way keeps working and gets the same frozen-in-time counters. A property was chosen over a
method because reading counters has no cost worth signalling and ``logging.Handler`` users
already read ``handler.stats``.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["Snapshot"]

_S = TypeVar("_S", bound="Snapshot")


class Snapshot:
    """A counters snapshot that returns itself when called (``door.stats`` == ``door.stats()``)."""

    __slots__ = ()

    def __call__(self: _S) -> _S:
        """This snapshot: ``door.stats()`` reads the same as ``door.stats``."""
        return self
