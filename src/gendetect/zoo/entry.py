"""What a published detector is: its card, the files it needs, and how its official weights become a pipeline.

A :class:`ZooEntry` is pure data plus one ``make_config`` function (the converter into our pipeline format); it
imports nothing heavy, so ``gendetect models list`` is instant and offline errors come before torch is imported.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from gendetect.errors import WeightsNotFoundError
from gendetect.hub import fetch_url, resolve_all, resolve_url, resolve_weights, url_cache_root

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WeightFile:
    """One file an entry needs: from a raw URL (with its sha256, when published) or from a Hugging Face repo."""

    role: str  # what the entry calls it: "checkpoint", "head", "backbone"
    filename: str  # raw URL: the path under <cache>/url/; hub: the file inside the repository
    url: str | None = None  # raw URL (GitHub raw, Dropbox with dl=1...)
    sha256: str | None = None  # hex sha256 of the published file; None when the authors publish none
    repo: str | None = None  # Hugging Face repository id, for hub files
    revision: str | None = None  # hub revision (commit) when pinned
    size: str = ""  # approximate download size, for the card

    @property
    def source(self) -> str:
        if self.url:
            return self.url
        return f"hf-hub:{self.repo}" + (f"@{self.revision}" if self.revision else "") + f" {self.filename}"


@dataclass(frozen=True)
class ZooEntry:
    """A published detector: the card, the files, and ``make_config(entry, paths) -> (config, state)``.

    ``make_config`` gets the local path of each file by role and returns the pipeline config (extractor, detector,
    threshold, info) and the detector's arrays: the same pair :func:`gendetect.pipeline.write_model_dir` writes.
    """

    name: str
    title: str  # the paper's title
    authors: str
    venue: str
    year: int
    repository: str  # official code
    licence: str
    trained_on: str
    backbone: str  # architecture and initial weights
    preprocessing: str  # the authors' test transform, in words
    reported: str  # what the paper or README reports, for the card
    files: tuple[WeightFile, ...]
    make_config: Callable[[ZooEntry, dict[str, Path]], tuple[dict[str, Any], dict[str, np.ndarray]]]
    params: dict[str, Any] = field(default_factory=dict)  # architecture/preprocessing, used by make_config
    verified: tuple[str, ...] = ()  # what was checked against the official code and README
    unverified: tuple[str, ...] = ()  # what could not be
    cost: str = "not measured"  # CPU cost per image; GPU: not measured (no GPU here)
    extras: str = ""  # pip extras it needs

    @property
    def pull_command(self) -> str:
        return f"gendetect models pull {self.name}"

    def with_params(self, **params: Any) -> ZooEntry:
        """A copy with some ``params`` overridden (tests use tiny architectures this way)."""
        return replace(self, params={**self.params, **params})

    # -- files -------------------------------------------------------------------------------------------------
    def _resolve(self, f: WeightFile, cache: str | os.PathLike | None, download: bool) -> Path:
        what = f"{self.name} {f.role}"
        if f.url:
            if download:
                return fetch_url(f.url, filename=f.filename, sha256=f.sha256, cache=cache, what=what)  # honours offline
            return resolve_url(f.url, filename=f.filename, sha256=f.sha256, cache=cache, what=what)
        return resolve_weights(
            f"hf-hub:{f.repo}",
            filename=f.filename,
            revision=f.revision,
            cache=cache,
            offline=None if download else True,  # pull honours HF_HUB_OFFLINE; loading never downloads
            what=what,
        )

    def local_paths(
        self, cache: str | os.PathLike | None = None, roles: tuple[str, ...] | None = None
    ) -> dict[str, Path]:
        """The local path of every file (or of ``roles``), from the caches only (never the network); one error
        lists every miss."""
        files = {f.role: f for f in self.files if roles is None or f.role in roles}
        return resolve_all(
            {role: functools.partial(self._resolve, f, cache, download=False) for role, f in files.items()},
            what=f"Published detector {self.name!r}",
            describe=lambda role, e: f"{role} ({files[role].source}): {e}",
            fix=lambda _: (
                f"With a network, `{self.pull_command}` fetches them all into the cache "
                f"({url_cache_root(cache).parent}); copy that folder to an offline machine and set GENDETECT_CACHE."
            ),
            total=len(self.files),
        )

    def pull(self, cache: str | os.PathLike | None = None) -> dict[str, Path]:
        """Download every file into the cache (checking sha256 where published); returns the paths by role."""
        return {f.role: self._resolve(f, cache, download=True) for f in self.files}

    def status(self, cache: str | os.PathLike | None = None) -> dict[str, bool]:
        """Which files are in the cache, by role (a cheap check; sha256 is checked when loading)."""
        out = {}
        for f in self.files:
            if f.url:
                out[f.role] = (url_cache_root(cache) / f.filename).is_file()
            else:
                try:
                    self._resolve(f, cache, download=False)
                    out[f.role] = True
                except WeightsNotFoundError:
                    out[f.role] = False
        return out

    # -- pipelines ---------------------------------------------------------------------------------------------
    def config(self, paths: dict[str, Path]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(pipeline config, detector arrays)`` from local files by role; the converter runs here."""
        config, state = self.make_config(self, paths)
        config.setdefault("name", self.name)
        config.setdefault("zoo", {"entry": self.name, "files": {k: str(v) for k, v in paths.items()}})
        config.setdefault("threshold_rule", {"rule": "the paper's decision rule: P(fake) > 0.5", "target_fpr": None})
        config.setdefault(
            "training",
            {"data": self.trained_on, "source": f"{self.authors}, {self.venue} {self.year}", "code": self.repository},
        )
        return config, state

    def card(self) -> str:
        """The model card: paper, files, preprocessing, reported results, what was verified and what was not."""
        lines = [
            f"# {self.name}: {self.title}",
            "",
            f"{self.authors}, {self.venue} {self.year}. Code: {self.repository}",
            "",
            f"- licence: {self.licence}",
            f"- trained on: {self.trained_on}",
            f"- backbone: {self.backbone}",
            f"- preprocessing: {self.preprocessing}",
            f"- reported: {self.reported}",
            f"- cost: {self.cost}",
            "- files:",
        ]
        for f in self.files:
            sha = f"sha256 {f.sha256}" if f.sha256 else "sha256 not published"
            lines.append(f"  - {f.role}: {f.source} ({sha}{', ' + f.size if f.size else ''})")
        lines += [f"- verified: {v}" for v in self.verified]
        lines += [f"- unverified: {u}" for u in self.unverified]
        return "\n".join(lines) + "\n"


def identity_head() -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A logistic head that passes one logit through: ``P(fake) = sigmoid(x)`` (config, arrays)."""
    return linear_head(np.ones(1), np.zeros(1))


def linear_head(w: np.ndarray, b: np.ndarray) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A fitted ``logistic`` detector computing ``sigmoid(w . x + b)`` without standardisation (config, arrays)."""
    from gendetect.detectors.linear import LogisticDetector

    detector = LogisticDetector.from_linear(w, b)
    return detector.get_config(), detector.state_dict()
