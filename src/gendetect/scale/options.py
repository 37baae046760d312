"""How a run is executed, separate from what it computes: :class:`EngineOptions` travels as one value through every
function that can run on the local engine or on Ray (scans, feature extraction, dataset generation)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from gendetect.errors import GendetectError
from gendetect.registry import Registry

EngineFn = Callable[..., None]
ENGINES: Registry[EngineFn] = Registry("engine")
"""Where the shards of a run execute, by name: ``engine(task, todo, shards, store, options)`` runs the shards
``todo`` of a :class:`~gendetect.scale.runner.ShardStore` and commits each. ``local`` runs them in this process,
``ray`` on Ray Data actors (imported only when used); a plug-in adds its own with ``ENGINES.register("name")``."""
ENGINES.register_lazy("local", "gendetect.scale.runner:run_local")
ENGINES.register_lazy("ray", "gendetect.scale.runner:run_ray")


@dataclass(frozen=True)
class EngineOptions:
    """Where and in what pieces a sharded run executes.

    Args:
        engine: ``"local"`` (this process) or ``"ray"`` (Ray Data actors).
        address: Ray cluster address (``"auto"``, ``"ray://host:10001"``); None starts or joins a local instance.
        workers: Ray actors (default: one per CPU, or per GPU for GPU work).
        shard_size: items per shard: the unit of work, of retry and of resume.
        progress: ``progress(done, total)`` after each shard on the local engine; not part of the saved config.

    >>> EngineOptions.from_dict({"engine": "ray", "shard_size": 64}).shard_size
    64
    >>> EngineOptions.resolve(None, shard_size=8) == EngineOptions(shard_size=8)
    True
    """

    engine: str = "local"
    address: str | None = None
    workers: int | None = None
    shard_size: int = 256
    progress: Callable[[int, int], None] | None = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise GendetectError(f"Unknown engine {self.engine!r}; valid engines: {', '.join(ENGINES)}.")
        if self.shard_size < 1:
            raise GendetectError(f"shard_size must be at least 1, not {self.shard_size}.")
        if self.workers is not None and self.workers < 1:
            raise GendetectError(f"workers must be at least 1, not {self.workers}.")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EngineOptions:
        """Build from a config mapping; an unknown key is an error that lists the valid ones."""
        valid = {f.name for f in fields(cls)}
        unknown = set(d) - valid
        if unknown:
            raise GendetectError(f"Unknown engine option(s) {sorted(unknown)}; valid: {', '.join(sorted(valid))}.")
        return cls(**dict(d))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able options (without the progress callback)."""
        d = asdict(self)
        d.pop("progress")
        return d

    def replace(self, **changes: Any) -> EngineOptions:
        return replace(self, **changes)

    @classmethod
    def resolve(cls, options: EngineOptions | None = None, /, **legacy: Any) -> EngineOptions:
        """``options``, or options from the separate keywords older callers pass (``engine=``, ``shard_size=``...).

        Keywords set to None keep the default (or ``options``' value). Functions that take an ``EngineOptions`` call
        this so that ``f(items, EngineOptions(shard_size=64))`` and ``f(items, shard_size=64)`` mean the same.
        """
        names = tuple(f.name for f in fields(cls))
        unknown = set(legacy) - set(names)
        if unknown:
            raise TypeError(f"unexpected keyword argument(s) {sorted(unknown)}; engine options are {names}")
        given = {k: v for k, v in legacy.items() if v is not None}
        if options is None:
            return cls(**given)
        return options.replace(**given) if given else options
