"""How much memory a queued value holds, estimated cheaply with a bounded walk.

The queue's byte bound is only as good as this estimate: an ``extra=`` value of 100 KB must
count as 100 KB, or a few thousand such records would outgrow any bound. The walk visits at
most ``budget`` objects, so a huge or cyclic container costs the logging thread a bounded time;
what it does not visit is counted at a flat rate per element.
"""

from __future__ import annotations

__all__ = ["NUMBER_SIZE", "STR_SIZE", "estimate_size"]

# Rough CPython object sizes in bytes (64-bit): headers of str and bytes, a boxed number, an empty
# container, one pointer slot, an object of unknown kind.
STR_SIZE = 49
_BYTES = 33
NUMBER_SIZE = 32
_CONTAINER = 64
_SLOT = 8
_UNKNOWN = 64
_SCALARS = frozenset({int, float, bool, complex, type(None)})
_SEQUENCES = frozenset({list, tuple, set, frozenset})


def estimate_size(value: object, budget: int = 256) -> int:
    """Estimated bytes ``value`` keeps alive: strings and bytes by length, containers walked."""
    if type(value) is dict and 2 * len(value) < budget:
        flat = _flat_dict_size(value)  # the usual attributes or extras: no walk needed
        if flat is not None:
            return flat
    return _walk_size(value, budget)


def _walk_size(value: object, budget: int) -> int:
    """:func:`estimate_size` by walking ``value``, visiting at most ``budget`` objects."""
    total = 0
    todo = [value]
    visited = 0
    while todo:
        if visited >= budget:
            return total + _UNKNOWN * len(todo)
        item = todo.pop()
        visited += 1
        kind = type(item)
        if kind is str:
            text: str = item  # type: ignore[assignment]
            total += STR_SIZE + (len(text) if text.isascii() else 4 * len(text))
        elif kind is bytes or kind is bytearray or kind is memoryview:
            total += _BYTES + len(item)  # type: ignore[arg-type]
        elif kind in _SCALARS:
            total += NUMBER_SIZE
        elif kind is dict:
            mapping: dict[object, object] = item  # type: ignore[assignment]
            total += _CONTAINER + 3 * _SLOT * len(mapping)
            room = budget - visited
            if len(mapping) <= room:
                todo.extend(mapping.values())
                todo.extend(mapping.keys())
            else:
                total += _UNKNOWN * 2 * len(mapping)
        elif kind in _SEQUENCES:
            items: list[object] = item  # type: ignore[assignment]
            total += _CONTAINER + _SLOT * len(items)
            if len(items) <= budget - visited:
                todo.extend(items)
            else:
                total += _UNKNOWN * len(items)
        else:
            total += _UNKNOWN
    return total


def _flat_dict_size(mapping: dict[object, object]) -> int | None:
    """What :func:`estimate_size` says of a dict of strings and numbers, in one loop; None when
    a key or value is of another kind (then the general walk sizes it)."""
    total = _CONTAINER + 3 * _SLOT * len(mapping)
    scalars = _SCALARS
    for key, value in mapping.items():
        if type(key) is not str:
            return None
        total += STR_SIZE + (len(key) if key.isascii() else 4 * len(key))
        kind = type(value)
        if kind is str:
            text: str = value  # type: ignore[assignment]
            total += STR_SIZE + (len(text) if text.isascii() else 4 * len(text))
        elif kind in scalars:
            total += NUMBER_SIZE
        else:
            return None
    return total
