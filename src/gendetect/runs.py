"""Run configs: what a command computes, as frozen dataclasses read from (and written to) JSON or YAML files.

=====================  ==========================================================================================
config                 what it fixes
=====================  ==========================================================================================
:class:`Recipe`        a detector recipe: extractor config, detector config, calibration
:class:`TrainRun`      ``gendetect train``: data, recipe (or preset), threshold rule, folds, splits, store, jobs
:class:`FeaturesRun`   ``gendetect features extract``: data, extractor (or preset), store, layout, jobs
:class:`GenerateRun`   ``gendetect data generate``: captions, generators, counts, :class:`Sampling`, format, seed
:class:`Sampling`      the settings systematic generation draws per image (steps, guidance, scheduler, size)
``ProtocolConfig``     ``gendetect evaluate`` (:mod:`gendetect.evaluation.protocols`), the same contract
``EngineOptions``      *how* a sharded run executes (:mod:`gendetect.scale.options`): a config file's ``engine``
=====================  ==========================================================================================

Each has ``from_dict`` (an unknown key is an error that lists the valid keys) and ``to_dict`` (JSON-able; reading it
back gives an equal config). A config file holds the fields of one of them, and for the sharded commands an
``engine`` section of :class:`~gendetect.scale.options.EngineOptions` fields::

    {"data": "data/train", "preset": "forensic", "target_fpr": 0.05, "engine": {"shard_size": 128}}

**Precedence** (lowest first): the defaults, then the file (:func:`read_config`), then each ``--set KEY=VALUE``
(dotted keys reach inside: ``recipe.detector.params.C=0.1``, ``engine.workers=4``; values are JSON, else text),
then every option given on the command line. An option left at its default never overrides the file.

Nothing here is imported by ``data/``, ``features/``, ``detectors/`` or ``scale/``; the components a run needs
are imported when it builds or runs them.

Example:
    >>> run = TrainRun.from_dict({"data": "d", "recipe": {"detector": {"name": "knn", "params": {"k": 5}}}})
    >>> run.recipe.extractor["name"], run.recipe.detector["params"]["k"]
    ('spectrum', 5)
    >>> TrainRun.from_dict(run.to_dict()) == run
    True
    >>> TrainRun.from_dict({"dta": "d"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gendetect.errors.DataSchemaError: Unknown train run keys ['dta']; valid keys: ['conformal', 'data', 'folds', ...].
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

from gendetect.errors import DataSchemaError

if TYPE_CHECKING:
    from gendetect.data.records import ImageRecord
    from gendetect.pipeline import DetectionPipeline
    from gendetect.scale.options import EngineOptions

C = TypeVar("C", bound="RunConfig")

ENGINE_KEY = "engine"  # the section of a config file that holds EngineOptions fields


# -- the contract ------------------------------------------------------------------------------------------------
class RunConfig:
    """Mixin for frozen config dataclasses: ``from_dict`` that refuses unknown keys, ``to_dict``, ``replace``.

    Subclasses name themselves in ``_kind`` (for messages) and list nested configs in ``_nested``
    (``{"recipe": Recipe}``); a field whose default is a tuple is read back as a tuple from a JSON list.
    """

    _kind: ClassVar[str] = "config"
    _nested: ClassVar[dict[str, Callable[[], type[RunConfig]]]] = {}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        """Build from a mapping of field values; a missing field keeps its default.

        Raises:
            DataSchemaError: ``d`` is not a mapping, or has a key that is not a field (the message lists them).
        """
        if not isinstance(d, Mapping):
            raise DataSchemaError(f"A {cls._kind} is a mapping of its fields; got {type(d).__name__}: {d!r}.")
        valid = sorted(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
        unknown = set(d) - set(valid)
        if unknown:
            raise DataSchemaError(f"Unknown {cls._kind} keys {sorted(unknown)}; valid keys: {valid}.")
        return cls(**cls._convert(dict(d)))

    @classmethod
    def _convert(cls, d: dict[str, Any]) -> dict[str, Any]:
        """Field values from their JSON form: nested configs from mappings, tuples from lists."""
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.name not in d:
                continue
            value = d[f.name]
            if f.name in cls._nested and isinstance(value, Mapping):
                d[f.name] = cls._nested[f.name]().from_dict(value)
            elif isinstance(f.default, tuple) and isinstance(value, list):
                d[f.name] = tuple(value)
        return d

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-able values (nested configs as mappings, tuples as lists)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` (field values)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def _jsonable(value: Any) -> Any:
    if isinstance(value, RunConfig):
        return value.to_dict()
    if hasattr(value, "to_dict") and dataclasses.is_dataclass(value):  # a GeneratorSpec given by a library caller
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def component_spec(value: Any, what: str) -> dict[str, Any]:
    """A component config ``{"name": ..., "params": {...}}`` from itself or a bare name (a fresh copy).

    Raises:
        DataSchemaError: neither a name nor a mapping with a ``name`` and, optionally, a ``params`` mapping.
    """
    if isinstance(value, str):
        return {"name": value, "params": {}}
    if isinstance(value, Mapping) and isinstance(value.get("name"), str) and set(value) <= {"name", "params"}:
        params = value.get("params") or {}
        if isinstance(params, Mapping):
            return {"name": value["name"], "params": copy.deepcopy(dict(params))}
    raise DataSchemaError(f"The {what} is a name or {{'name': ..., 'params': {{...}}}}; got {value!r}.")


# -- recipes -----------------------------------------------------------------------------------------------------
CALIBRATIONS = ("temperature", "isotonic")  # gendetect.calibration.CALIBRATORS; None (or "none") calibrates nothing


def _default_extractor() -> dict[str, Any]:
    return {"name": "spectrum", "params": {}}


def _default_detector() -> dict[str, Any]:
    return {"name": "logistic", "params": {}}


@dataclass(frozen=True)
class Recipe(RunConfig):
    """What a trained model is made of: an extractor config, a detector config and the calibration of P(fake).

    ``extractor`` and ``detector`` may be given as bare names; they are stored as ``{"name", "params"}``.

    >>> Recipe.from_dict({"detector": "knn"}).override(detector_params={"k": 3}).to_dict()["detector"]
    {'name': 'knn', 'params': {'k': 3}}
    """

    _kind: ClassVar[str] = "recipe"

    extractor: dict[str, Any] = field(default_factory=_default_extractor)  # {"name", "params"} in EXTRACTORS
    detector: dict[str, Any] = field(default_factory=_default_detector)  # {"name", "params"} in DETECTORS
    calibration: str | None = None  # "temperature" or "isotonic" (on out-of-fold scores); None: uncalibrated

    def __post_init__(self) -> None:
        object.__setattr__(self, "extractor", component_spec(self.extractor, "recipe's extractor"))
        object.__setattr__(self, "detector", component_spec(self.detector, "recipe's detector"))
        if self.calibration == "none":
            object.__setattr__(self, "calibration", None)
        if self.calibration is not None and not isinstance(self.calibration, str):
            raise DataSchemaError(
                f"The recipe's calibration is a name ({', '.join(CALIBRATIONS)}) or None; got {self.calibration!r}."
            )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], base: Recipe | None = None) -> Recipe:  # type: ignore[override]
        """Build from a mapping; the parts it leaves out come from ``base`` (default: ``Recipe()``).

        A component given without a ``name`` (``{"params": {"C": 0.1}}``) updates the parameters of ``base``'s.
        """
        base = base or cls()
        if isinstance(d, Mapping):
            d = dict(d)
            for key in ("extractor", "detector"):
                part = d.get(key)
                if isinstance(part, Mapping) and "name" not in part and set(part) <= {"params"}:
                    mine = getattr(base, key)
                    d[key] = {"name": mine["name"], "params": {**mine["params"], **(part.get("params") or {})}}
        recipe = super().from_dict(d)
        return base.replace(**{k: getattr(recipe, k) for k in d})

    @classmethod
    def from_preset(cls, name: str) -> Recipe:
        """The named recipe of :data:`gendetect.presets.PRESETS` (an unknown name lists the valid ones)."""
        from gendetect.presets import get_preset

        return cls.from_dict(get_preset(name))

    @classmethod
    def of(cls, extractor: Any, detector: Any, calibration: str | None = None) -> Recipe:
        """The recipe of built components (their ``get_config()``)."""
        det = detector if isinstance(detector, Mapping) else detector.get_config()
        return cls(extractor.get_config(), det, calibration)

    def override(
        self,
        *,
        extractor: str | None = None,
        extractor_params: Mapping[str, Any] | None = None,
        detector: str | None = None,
        detector_params: Mapping[str, Any] | None = None,
        calibration: str | None = None,
    ) -> Recipe:
        """A copy with another extractor or detector (by name, with no parameters), then these parameters updated.

        Args:
            extractor, detector: replace the component (its parameters start empty).
            extractor_params, detector_params: update the parameters (after a replacement).
            calibration: replace the calibration (``"none"`` removes it).
        """
        ext = component_spec(extractor, "extractor") if extractor else component_spec(self.extractor, "extractor")
        det = component_spec(detector, "detector") if detector else component_spec(self.detector, "detector")
        ext["params"].update(extractor_params or {})
        det["params"].update(detector_params or {})
        return Recipe(ext, det, self.calibration if calibration is None else calibration)

    def check(self) -> None:
        """Fail now, before any work, on a name no registry knows (the message lists the valid ones)."""
        from gendetect.calibration import CALIBRATORS
        from gendetect.detectors import DETECTORS
        from gendetect.features import EXTRACTORS

        EXTRACTORS.get(self.extractor["name"])
        DETECTORS.get(self.detector["name"])
        if self.calibration is not None:
            CALIBRATORS.get(self.calibration)

    def build_extractor(self) -> Any:
        """The extractor (through ``EXTRACTORS.from_config``)."""
        from gendetect.features import EXTRACTORS

        return EXTRACTORS.from_config(self.extractor)

    def build_detector(self) -> Any:
        """A fresh, unfitted detector (through ``DETECTORS.from_config``)."""
        from gendetect.detectors import DETECTORS

        return DETECTORS.from_config(self.detector)

    def build(self) -> tuple[Any, Any]:
        """``(extractor, unfitted detector)``."""
        return self.build_extractor(), self.build_detector()


# -- training ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainRun(RunConfig):
    """``gendetect train``: train a recipe on labelled data; the model's threshold comes from out-of-fold scores.

    With a ``preset`` and no ``recipe``, the recipe is the preset's; parts of a ``recipe`` given with a preset
    replace the preset's parts (``{"preset": "univfd", "recipe": {"detector": "knn"}}``).
    """

    _kind: ClassVar[str] = "train run"
    _nested: ClassVar[dict[str, Callable[[], type[RunConfig]]]] = {"recipe": lambda: Recipe}

    data: str | None = None  # labelled folder or manifest (.parquet/.csv/.jsonl)
    preset: str | None = None  # the named recipe the recipe starts from; also the model's name when none is given
    recipe: Recipe | None = None  # extractor, detector, calibration; None: the preset's, else Recipe()
    target_fpr: float = 0.01  # the threshold keeps validation FPR on reals at or below this
    uncertain_fpr: float = 0.05  # scores between this FPR's threshold and the main one are "uncertain"; 0: no band
    conformal: bool = True  # thresholds at the split-conformal quantile (the FPR holds on new reals); False: in-sample
    folds: int = 5  # cross-validation folds for the threshold and the validation metrics
    split: str | None = None  # use only these splits (comma-separated); records of split "test" never train
    layout: str = "auto"  # layout when data is a folder (gendetect.data.readers.LAYOUTS)
    name: str | None = None  # the model's name, recorded in its config
    store: str | None = None  # feature store folder: reuse cached features, cache new ones
    jobs: int = 1  # worker processes (0: all cores)

    def __post_init__(self) -> None:
        if self.recipe is None:
            object.__setattr__(self, "recipe", Recipe.from_preset(self.preset) if self.preset else Recipe())

    @classmethod
    def _convert(cls, d: dict[str, Any]) -> dict[str, Any]:
        recipe = d.get("recipe")
        if isinstance(recipe, Mapping):
            d["recipe"] = Recipe.from_dict(recipe, base=Recipe.from_preset(d["preset"]) if d.get("preset") else None)
        return super()._convert(d)

    def select(self, records: Sequence[ImageRecord]) -> tuple[list[ImageRecord], int]:
        """``(records kept to split, without those of split "test"; how many "test" records were dropped)``."""
        from gendetect.data.summary import select_splits

        kept = select_splits(records, keep=self.split)
        training = select_splits(kept, drop="test")
        return training, len(kept) - len(training)

    def records(self) -> list[ImageRecord]:
        """The records of ``data`` this run trains on (:meth:`select`), read with probing and hashing.

        Raises:
            DataSchemaError: no ``data``, or no records left.
        """
        from gendetect.data.readers import read_records

        if self.data is None:
            raise DataSchemaError("a train run needs data: set 'data' in the config or pass --data")
        records, _ = self.select(read_records(self.data, layout=self.layout, probe=True, hash=True))
        if not records:
            where = f" with split {self.split!r}" if self.split else ""
            raise DataSchemaError(f"no images found in {self.data}{where}")
        return records


def train(
    run: TrainRun,
    records: Sequence[ImageRecord] | None = None,
    *,
    components: tuple[Any, Any] | None = None,
    progress: Callable[..., Any] | None = None,
) -> DetectionPipeline:
    """Train ``run``: the library form of ``gendetect train --config FILE``.

    Args:
        run: what to train.
        records: the labelled records (default: :meth:`TrainRun.records`, read after the recipe is built, so that a
            bad recipe fails before the data is read).
        components: ``(extractor, unfitted detector)`` already built from ``run.recipe`` (default: built here).
        progress: ``progress(iterable, total) -> iterable`` around feature extraction.

    Returns:
        The fitted :class:`~gendetect.pipeline.DetectionPipeline`, to ``save``.
    """
    from gendetect.features.store import FeatureStore
    from gendetect.training import train_pipeline

    if components is None:
        run.recipe.check()
        components = run.recipe.build()
    extractor, detector = components
    return train_pipeline(
        list(run.records() if records is None else records),
        extractor,
        detector,
        target_fpr=run.target_fpr,
        uncertain_fpr=run.uncertain_fpr or None,
        conformal=run.conformal,
        n_folds=run.folds,
        jobs=run.jobs,
        name=run.name or run.preset,
        data=run.data,
        calibration=run.recipe.calibration,
        store=FeatureStore(run.store, extractor) if run.store else None,
        progress=progress,
    )


# -- features ----------------------------------------------------------------------------------------------------
def _default_features_extractor() -> dict[str, Any]:
    return {"name": "forensic", "params": {}}


@dataclass(frozen=True)
class FeaturesRun(RunConfig):
    """``gendetect features extract``: fill the feature store of one extractor for every image of ``data``.

    With a ``preset`` and no ``extractor``, the extractor is the preset's.
    """

    _kind: ClassVar[str] = "features run"

    data: str | None = None  # folder or manifest
    extractor: dict[str, Any] | None = None  # {"name", "params"}; None: the preset's, else forensic
    preset: str | None = None  # take the extractor of this preset
    store: str | None = None  # store folder (default: gendetect.features.store.default_store_root())
    layout: str = "auto"  # layout when data is a folder
    jobs: int = 1  # worker processes per engine worker (0: all cores)

    def __post_init__(self) -> None:
        if self.extractor is None:
            ext = Recipe.from_preset(self.preset).extractor if self.preset else _default_features_extractor()
        else:
            ext = component_spec(self.extractor, "extractor")
        object.__setattr__(self, "extractor", ext)

    def build_extractor(self) -> Any:
        """The extractor (through ``EXTRACTORS.from_config``)."""
        from gendetect.features import EXTRACTORS

        return EXTRACTORS.from_config(self.extractor)


# -- generation --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sampling(RunConfig):
    """Randomised sampling settings of systematic generation (Community Forensics): drawn per image, seeded.

    In JSON a ``resolution`` list is a list of choices; one (height, width) is ``[[h, w]]``.
    """

    _kind: ClassVar[str] = "sampling"

    steps: tuple[int, int] = (20, 50)  # denoising steps, uniform integer range
    guidance: tuple[float, float] = (3.0, 10.0)  # classifier-free guidance, uniform range
    scheduler: tuple[str, ...] = ("default", "ddim", "euler", "euler_a", "dpm++2m", "unipc")  # choices
    resolution: Any = None  # None: each model's default size; or a side, (h, w), or a list of choices


@dataclass(frozen=True)
class GenerateRun(RunConfig):
    """``gendetect data generate``: what :func:`~gendetect.generation.build.generate_dataset` makes.

    ``generators`` are names (``"sd14,sd21"``, ``diffusers:ORG/REPO[@REV]``; library callers may pass
    :class:`~gendetect.generation.generators.GeneratorSpec` objects, which ``to_dict`` writes out in full but
    ``from_dict`` does not read back); ``models`` is a models file (one id a line) or a list of ids.
    """

    _kind: ClassVar[str] = "generate run"
    _nested: ClassVar[dict[str, Callable[[], type[RunConfig]]]] = {"sampling": lambda: Sampling}

    captions: str | None = None  # caption file: COCO .json, WIT-style .tsv, .txt/.csv prompt list
    generators: tuple[Any, ...] = ()  # each makes per_caption fakes of every caption
    per_caption: int = 1  # fakes per caption and generator
    models: tuple[str, ...] | str | None = None  # systematic mode: hub ids / local folders, or a models file
    per_model: int = 4  # systematic mode: fakes per model
    sampling: Sampling = field(default_factory=Sampling)  # systematic mode: the settings drawn per image
    real_root: str | None = None  # folder of the real images the captions name (COCO file_name)
    instances: str | None = None  # COCO instances JSON giving each image a subject
    captions_per_image: int | None = None  # use at most this many captions per real image
    format: str = "auto"  # "auto", "match-real" or "lossless" (gendetect.generation.build)
    limit: int | None = None  # use only the first captions
    seed: int = 0  # base seed: the same inputs and seed give the same images
    test_fraction: float = 0.2  # share of real images, with all their fakes, in the "test" split
    device: str | None = None  # torch device for the pipelines (default cpu)
    batch_size: int = 1  # prompts per pipeline call

    def __post_init__(self) -> None:
        gens = self.generators
        if isinstance(gens, str):
            gens = tuple(g.strip() for g in gens.split(",") if g.strip())
        object.__setattr__(self, "generators", tuple(gens))
        if isinstance(self.models, list):
            object.__setattr__(self, "models", tuple(self.models))
        if isinstance(self.models, os.PathLike):
            object.__setattr__(self, "models", os.fspath(self.models))
        for name in ("captions", "real_root", "instances"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                object.__setattr__(self, name, os.fspath(value))

    @classmethod
    def _convert(cls, d: dict[str, Any]) -> dict[str, Any]:
        gens = d.get("generators", ())
        for g in [gens] if isinstance(gens, str) else gens:
            if not isinstance(g, str):
                raise DataSchemaError(
                    f"generators are names (sd14, diffusers:ORG/REPO[@REV]); got {g!r} (`gendetect list generators`)"
                )
        return super()._convert(d)


# -- files and overrides -----------------------------------------------------------------------------------------
def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping in a JSON file, or a YAML file (``.yaml``/``.yml``, when pyyaml is installed).

    Raises:
        DataSchemaError: unreadable, not JSON/YAML, not a mapping, or YAML without pyyaml.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise DataSchemaError(f"cannot read the config file {path}: {e}") from e
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as e:
            raise DataSchemaError(
                f"{path}: reading YAML needs pyyaml (pip install pyyaml); or write the config as JSON"
            ) from e
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise DataSchemaError(f"{path} is not valid YAML: {e}") from e
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataSchemaError(f"{path} is not valid JSON: {e} (YAML files end in .yaml or .yml)") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DataSchemaError(f"{path}: a config file holds a mapping of fields, not a {type(data).__name__}")
    return data


def apply_sets(config: Mapping[str, Any], pairs: Sequence[str]) -> dict[str, Any]:
    """``config`` (a copy) with each ``KEY=VALUE`` set; dotted keys reach into nested mappings.

    Values are parsed as JSON (``5``, ``0.1``, ``true``, ``null``, ``[1, 2]``), else kept as text.

    >>> apply_sets({"recipe": {"detector": "knn"}}, ["recipe.detector.params.k=5", "name=mine"])
    {'recipe': {'detector': {'name': 'knn', 'params': {'k': 5}}}, 'name': 'mine'}

    Raises:
        DataSchemaError: a pair without ``=`` or key, or a key below a value that is not a mapping.
    """
    out = copy.deepcopy(dict(config))
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise DataSchemaError(f"--set expects KEY=VALUE (dotted keys for nested fields), got {pair!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if isinstance(child, str) and parts[i + 1] in ("name", "params"):  # a bare component name
                child = {"name": child, "params": {}}
            elif child is None:
                child = {}
            elif not isinstance(child, Mapping):
                raise DataSchemaError(f"--set {pair}: {'.'.join(parts[: i + 1])} is {child!r}, not a mapping")
            node[part] = child = dict(child)
            node = child
        node[parts[-1]] = value
    return out


def load_run(
    cls: type[C],
    path: str | os.PathLike | None = None,
    sets: Sequence[str] = (),
    overrides: Mapping[str, Any] | None = None,
    *,
    with_engine: bool = False,
) -> tuple[C, dict[str, Any]]:
    """A run config from a file, ``--set`` pairs and the options given on the command line, in that order.

    Args:
        cls: the config class (:class:`TrainRun`, :class:`GenerateRun`, ``ProtocolConfig``...).
        path: a JSON/YAML file (:func:`read_config`), or None.
        sets: ``KEY=VALUE`` pairs (:func:`apply_sets`).
        overrides: field values that win over both (None values are ignored: an option not given).
        with_engine: the run is sharded: the file may hold an ``engine`` section (else that key is unknown).

    Returns:
        ``(config, engine)``: the config, and the file's ``engine`` section (with its ``--set engine.*`` pairs) for
        :func:`engine_options`; empty without one.

    Raises:
        DataSchemaError: an unreadable file, a malformed ``--set``, an unknown key or a bad value.
    """
    raw = apply_sets(read_config(path) if path is not None else {}, sets)
    engine: Any = raw.pop(ENGINE_KEY, None) if with_engine else None
    if isinstance(engine, str):
        engine = {"engine": engine}
    if engine is not None and not isinstance(engine, Mapping):
        raise DataSchemaError(f"the config's {ENGINE_KEY!r} section is a mapping of engine options; got {engine!r}")
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return cls.from_dict(raw), dict(engine or {})


def engine_options(
    section: Mapping[str, Any], defaults: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> EngineOptions:
    """:class:`~gendetect.scale.options.EngineOptions` from ``defaults`` (the command's), then a config file's
    ``engine`` section, then the options given on the command line (``overrides``; None values ignored).

    Raises:
        GendetectError: an unknown option (the valid ones are listed) or an invalid value.
    """
    from gendetect.scale.options import EngineOptions

    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    return EngineOptions.from_dict({**defaults, **section, **given})


__all__ = [
    "CALIBRATIONS",
    "ENGINE_KEY",
    "FeaturesRun",
    "GenerateRun",
    "Recipe",
    "RunConfig",
    "Sampling",
    "TrainRun",
    "apply_sets",
    "component_spec",
    "engine_options",
    "load_run",
    "read_config",
    "train",
]
