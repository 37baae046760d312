"""Lazy re-exports (PEP 562): the one ``__getattr__``/``__dir__`` pair of every package that re-exports names.

A package lists where each name lives; the name's module is imported on first use, and the value is then stored
on the package, so later look-ups skip ``__getattr__``. ``import gendetect`` (the CLI, worker processes, Ray
actors) thus costs only what is used.

Example:
    >>> __getattr__, __dir__ = lazy_exports("gendetect", {"detect": "gendetect.pipeline"})  # in __init__.py
    >>> __getattr__("detect").__module__
    'gendetect.pipeline'
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], *, submodules: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` (its ``__name__``).

    Args:
        package: the package's ``__name__``.
        exports: name -> the module that defines it (``{"scan": "gendetect.pipeline"}``).
        submodules: submodule names that ``from package import name`` may also reach through ``__getattr__``.
    """
    subs = frozenset(submodules)

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
        elif name in subs:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        module = sys.modules[package]
        return sorted({*vars(module), *exports, *getattr(module, "__all__", ())})

    return __getattr__, __dir__
