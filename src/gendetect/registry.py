"""One registry per kind of component (extractors, detectors, calibrators, presets, generators, perturbations...).

Configs, the CLI and the HTTP API pass only name strings; the registry turns them into objects, and a saved config
``{"name": ..., "params": {...}}`` back into the component that wrote it::

    >>> from gendetect.registry import Registry
    >>> FRUIT = Registry("fruit")
    >>> @FRUIT.register("apple")
    ... class Apple:
    ...     def __init__(self, size=1):
    ...         self.size = size
    >>> FRUIT.create("apple", size=3).size
    3
    >>> FRUIT.list("app*")
    ['apple']
    >>> FRUIT.from_config({"name": "apple", "params": {"size": 5}}).size
    5
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from gendetect.errors import ModelFormatError, UnknownNameError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> class table with wildcard listing and helpful unknown-name errors.

    Entries are either registered eagerly with the :meth:`register` decorator, or lazily with
    :meth:`register_lazy` (``"module:attr"``), so optional heavy dependencies such as torch are only
    imported when their component is actually created.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = {}
        self._lazy: dict[str, str] = {}

    def register(self, name: str | None = None, *, overwrite: bool = False) -> Callable[[type[T]], type[T]]:
        """Class decorator registering ``cls`` under ``name`` (default: ``cls.name``)."""

        def deco(cls: type[T]) -> type[T]:
            key = name or getattr(cls, "name", None)
            if not key:
                raise ValueError(f"{cls!r} has no name to register under")
            if key in self._entries and self._entries[key] is not cls and not overwrite:
                logger.warning("%s %r registered twice; the later definition %r wins", self.kind, key, cls)
            self._entries[key] = cls
            self._lazy.pop(key, None)
            return cls

        return deco

    def register_lazy(self, name: str, target: str) -> None:
        """Register ``name`` to be imported from ``"package.module:Attr"`` on first use."""
        if name not in self._entries:
            self._lazy[name] = target

    def get(self, name: str) -> type[T]:
        """Return the class registered under ``name``; raise :class:`UnknownNameError` listing the options."""
        if name in self._entries:
            return self._entries[name]
        if name in self._lazy:
            module, _, attr = self._lazy[name].partition(":")
            cls = getattr(importlib.import_module(module), attr)
            self._entries[name] = cls
            self._lazy.pop(name, None)
            return cls
        valid = self.list()
        close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownNameError(f"Unknown {self.kind} {name!r}.{hint} Valid {self.kind} names: {', '.join(valid)}.")

    def create(self, name: str, **kwargs: Any) -> T:
        """Instantiate ``name`` with ``kwargs``; keyword arguments set to ``None`` keep their defaults."""
        cls = self.get(name)
        return cls(**{k: v for k, v in kwargs.items() if v is not None})

    def from_config(self, config: Mapping[str, Any]) -> T:
        """The component a saved config ``{"name": ..., "params": {...}}`` describes (the inverse of
        ``get_config()``).

        Unlike :meth:`create`, parameters are passed exactly as saved (``None`` included). A class with its own
        ``from_config`` classmethod (every :class:`~gendetect.config.Configurable`) builds itself, so it can read
        configs written by older versions. Learned state is not part of a config: load it afterwards
        (``load_state_dict``).

        Raises:
            ModelFormatError: ``config`` is not a mapping with a ``name``.
            UnknownNameError: the name is not registered; the message lists the valid names.
        """
        if not isinstance(config, Mapping) or not isinstance(config.get("name"), str):
            raise ModelFormatError(
                f"A {self.kind} config is a mapping {{'name': ..., 'params': {{...}}}}; got {config!r}."
            )
        params = config.get("params") or {}
        if not isinstance(params, Mapping):
            raise ModelFormatError(f"{self.kind} {config['name']!r}: 'params' must be a mapping, got {params!r}.")
        cls = self.get(config["name"])
        build = getattr(cls, "from_config", None)
        if isinstance(cls, type) and callable(build):
            return build({"name": config["name"], "params": dict(params)})
        return cls(**params)

    def list(self, pattern: str = "*") -> list[str]:
        """Sorted registered names matching the shell-style ``pattern``."""
        names = set(self._entries) | set(self._lazy)
        return sorted(n for n in names if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.list()})"
