"""Components persist the way diffusers' ``register_to_config`` does: their ``__init__`` keyword arguments *are*
their config. :class:`Configurable` reads them back by introspection (like scikit-learn's ``get_params``), so a
component saved as ``{"name": ..., "params": {...}}`` is rebuilt exactly by its registry.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from typing import Any, ClassVar


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

    def get_config(self) -> dict[str, Any]:
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
