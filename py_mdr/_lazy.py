"""Lazy package attributes (PEP 562), so a package's ``__init__`` imports nothing heavy."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``exports[name]`` (a module path) on first use."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        # kept on the package: importing a submodule of the same name (``py_mdr.validate``)
        # would otherwise leave the module where the function was asked for
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
