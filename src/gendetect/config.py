"""Components persist the way diffusers' ``register_to_config`` does: their ``__init__`` keyword arguments *are*
their config. :class:`Configurable` reads them back by introspection (like scikit-learn's ``get_params``), so a
component saved as ``{"name": ..., "params": {...}}`` is rebuilt exactly by its registry
(:meth:`gendetect.registry.Registry.from_config`). Extractors, detectors and calibrators all follow this contract;
what a component *learns* is not config: it lives in attributes ending in ``_`` and is saved as arrays
(``state_dict``), next to the config.

Example:
    >>> class Blur(Configurable):
    ...     name = "blur"
    ...     def __init__(self, sigma=1.0, mode="reflect"):
    ...         self.sigma = sigma
    ...         self.mode = mode
    >>> Blur(sigma=2.0).get_config()
    {'name': 'blur', 'params': {'sigma': 2.0, 'mode': 'reflect'}}
    >>> Blur.from_config({"name": "blur", "params": {"sigma": 3.0}}).sigma
    3.0
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from pathlib import Path
from typing import Any, ClassVar

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"  # the one name of a saved component's arrays (models, detectors, decoder zoos)
LEGACY_WEIGHTS_FILES = ("weights.safetensors",)  # what detectors and decoder zoos wrote before; still read


def weights_file(folder: str | os.PathLike) -> Path:
    """The arrays file of a saved folder: ``model.safetensors``, or the legacy ``weights.safetensors`` when only
    that one is there (folders saved by earlier versions). The returned path may not exist; callers say so."""
    folder = Path(folder)
    path = folder / WEIGHTS_FILE
    if not path.is_file():
        for legacy in LEGACY_WEIGHTS_FILES:
            if (folder / legacy).is_file():
                return folder / legacy
    return path


class Configurable:
    """Mixin: ``get_config()`` returns ``{"name": registry name, "params": __init__ kwargs}``.

    Subclasses store every ``__init__`` argument unchanged as an attribute of the same name.
    """

    name: ClassVar[str] = ""

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Any:
        """The component described by ``config`` (``{"name", "params"}``), unfitted.

        Subclasses override this to read configs written by older versions (a parameter that became learned
        state, a renamed option); :meth:`Registry.from_config <gendetect.registry.Registry.from_config>` calls it.
        """
        return cls(**config.get("params", {}))

    def get_config(self) -> dict[str, Any]:
        """``{"name": registry name, "params": the __init__ arguments}``, JSON-ready (tuples become lists)."""
        params = {k: _jsonable(getattr(self, k)) for k in self._param_names()}
        return {"name": self.name, "params": params}

    @property
    def config_id(self) -> str:
        """Short stable hash of the config: the key under which this component's outputs are cached."""
        blob = json.dumps(self.get_config(), sort_keys=True).encode()
        return f"{self.name}-{hashlib.sha256(blob).hexdigest()[:12]}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value
