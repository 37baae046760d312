"""Published detectors by name: ``gendetect scan --model npr photo.jpg``, ``gendetect models list|show|pull``.

Each entry of :data:`ZOO` (see :mod:`gendetect.zoo.entries`) names the paper, the files its authors released (raw
URLs with their sha256 where published, or Hugging Face repositories), the licence, the authors' exact test
preprocessing and the converter from the official checkpoint into our pipeline format. The weights come only
through the resolver: a missing file fails at once with the commands that fetch it, and nothing ever runs on
random weights.

Example:
    >>> from gendetect.zoo import list_entries
    >>> "npr" in list_entries()
    True
    >>> # load_zoo_model needs the official files in the cache first: `gendetect models pull npr`
    >>> model = load_zoo_model("npr")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from gendetect.atomic import user_mode
from gendetect.registry import Registry
from gendetect.zoo.entries import ENTRIES
from gendetect.zoo.entry import WeightFile, ZooEntry

logger = logging.getLogger(__name__)

ZOO: Registry[ZooEntry] = Registry("published detector")
for _entry in ENTRIES:
    ZOO.register(_entry.name)(_entry)  # type: ignore[arg-type]

NETWORK_FILE = "network.safetensors"


def get_entry(name: str) -> ZooEntry:
    """The entry ``name``; an unknown name raises :class:`~gendetect.errors.UnknownNameError` listing the zoo."""
    return ZOO.get(name)  # type: ignore[return-value]


def list_entries(pattern: str = "*") -> list[str]:
    return ZOO.list(pattern)


def is_zoo_name(name: Any) -> bool:
    return isinstance(name, str) and name in ZOO


def _entry(entry: str | ZooEntry) -> ZooEntry:
    return entry if isinstance(entry, ZooEntry) else get_entry(entry)


def build_pipeline(config: dict[str, Any], state: dict[str, Any], *, device: str | None = None) -> Any:
    """A :class:`~gendetect.pipeline.DetectionPipeline` from a config and detector arrays, weights loaded now
    (so a checkpoint that does not fit fails before any image is scanned)."""
    from gendetect.detectors import DETECTORS
    from gendetect.features import EXTRACTORS
    from gendetect.pipeline import DetectionPipeline

    ext_config = config["extractor"]
    if device is not None and "device" in ext_config.get("params", {}):
        ext_config = {**ext_config, "params": {**ext_config["params"], "device": device}}
    extractor = EXTRACTORS.from_config(ext_config)
    if hasattr(extractor, "_load"):
        extractor._load()
    detector = DETECTORS.from_config(config["detector"]).load_state_dict(state)
    own = ("format_version", "extractor", "detector", "threshold", "uncertain_from", "calibration")
    info = {k: v for k, v in config.items() if k not in own}
    threshold, band = config["threshold"], config.get("uncertain_from")
    return DetectionPipeline(extractor, detector, threshold, info, uncertain_from=band)


def load_zoo_model(
    entry: str | ZooEntry, *, device: str | None = None, cache: str | os.PathLike | None = None
) -> Any:
    """The published detector ``entry`` as a pipeline, from the cached official files.

    Raises :class:`~gendetect.errors.WeightsNotFoundError` at once (before torch is imported) when a file is
    missing, listing each with its URL and the commands that fetch it.
    """
    e = _entry(entry)
    config, state = e.config(e.local_paths(cache))
    return build_pipeline(config, state, device=device)


def pull(entry: str | ZooEntry, *, cache: str | os.PathLike | None = None) -> dict[str, Path]:
    """Download every file of ``entry`` into the cache (sha256-checked where published) for offline use."""
    e = _entry(entry)
    paths = e.pull(cache)
    logger.info("%s: %s", e.name, ", ".join(f"{k} -> {v}" for k, v in paths.items()))
    return paths


def export_model(
    entry: str | ZooEntry,
    out_dir: str | os.PathLike,
    *,
    paths: dict[str, str | os.PathLike] | None = None,
    cache: str | os.PathLike | None = None,
) -> Path:
    """Convert ``entry``'s official files into a model directory that ``gendetect scan --model DIR`` loads.

    ``paths`` gives files by role (``{"checkpoint": "NPR.pth"}``) instead of the cached ones. A network checkpoint
    is loaded strictly and written as ``network.safetensors`` (float32, our key names) inside the directory; the
    directory also gets ``config.json``, ``model.safetensors`` (the head) and ``MODEL_CARD.md``.
    """
    from gendetect.pipeline import write_model_dir

    e = _entry(entry)
    given = {k: Path(v) for k, v in (paths or {}).items()}
    unknown = set(given) - {f.role for f in e.files}
    if unknown:
        raise ValueError(f"{e.name} has no file roles {sorted(unknown)}; its roles: {[f.role for f in e.files]}")
    needed = tuple(f.role for f in e.files if f.role not in given and f.role != "backbone")  # backbone: to scan
    resolved = {**(e.local_paths(cache, roles=needed) if needed else {}), **given}
    config, state = e.config(resolved)
    out = Path(out_dir)
    params = config["extractor"]["params"]
    if config["extractor"]["name"] == "zoo-net":  # convert the network into the directory
        from safetensors.torch import save_file

        from gendetect.zoo.nets import build_net

        net = build_net(params["arch"], params["weights"], params.get("arch_params"))
        net = getattr(net, "vit", net)  # CoDE: the transformers model inside the CLS read-out
        weights = net.exported_state() if hasattr(net, "exported_state") else net.state_dict()  # RINE: its head
        out.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().float().contiguous() for k, v in weights.items()}, str(out / NETWORK_FILE))
        user_mode(out / NETWORK_FILE)
        params["weights"] = str((out / NETWORK_FILE).resolve())
    return write_model_dir(out, config, state, card=e.card())


__all__ = [
    "ZOO",
    "WeightFile",
    "ZooEntry",
    "build_pipeline",
    "export_model",
    "get_entry",
    "is_zoo_name",
    "list_entries",
    "load_zoo_model",
    "pull",
]
