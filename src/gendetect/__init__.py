"""gendetect: tell real photographs from images made by generative models.

The library comes first; the ``gendetect`` CLI is a thin layer over these functions::

    from gendetect import load_model, scan
    for row in scan(["photo.jpg"], load_model()):      # the embedded default detector
        print(row.path, row.p_fake, row.verdict)

The names below are imported on first use (PEP 562), so ``import gendetect`` and every submodule import (the CLI,
worker processes, Ray actors) cost only what they use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gendetect._lazy import lazy_exports

if TYPE_CHECKING:  # the curated API, for type checkers and IDEs; at run time see __getattr__
    from gendetect.detectors import (
        Detector as Detector,
        create_detector as create_detector,
        list_detectors as list_detectors,
    )
    from gendetect.errors import GendetectError as GendetectError
    from gendetect.evaluation.protocols import ProtocolConfig as ProtocolConfig, run_protocol as run_protocol
    from gendetect.features import (
        FeatureExtractor as FeatureExtractor,
        create_extractor as create_extractor,
        list_extractors as list_extractors,
    )
    from gendetect.generation.build import generate_dataset as generate_dataset
    from gendetect.pipeline import (
        DetectionPipeline as DetectionPipeline,
        ScanRow as ScanRow,
        detect as detect,
        expand_inputs as expand_inputs,
        load_model as load_model,
        scan as scan,
    )
    from gendetect.runs import (
        GenerateRun as GenerateRun,
        Recipe as Recipe,
        TrainRun as TrainRun,
        train as train,
    )
    from gendetect.scale.options import EngineOptions as EngineOptions
    from gendetect.scale.scanning import scan_paths as scan_paths
    from gendetect.training import train_pipeline as train_pipeline

_EXPORTS = {
    "Detector": "gendetect.detectors",
    "create_detector": "gendetect.detectors",
    "list_detectors": "gendetect.detectors",
    "GendetectError": "gendetect.errors",
    "FeatureExtractor": "gendetect.features",
    "create_extractor": "gendetect.features",
    "list_extractors": "gendetect.features",
    "DetectionPipeline": "gendetect.pipeline",
    "ScanRow": "gendetect.pipeline",
    "expand_inputs": "gendetect.pipeline",
    "load_model": "gendetect.pipeline",
    "scan": "gendetect.pipeline",
    "detect": "gendetect.pipeline",
    "scan_paths": "gendetect.scale.scanning",
    "train_pipeline": "gendetect.training",
    "run_protocol": "gendetect.evaluation.protocols",
    "ProtocolConfig": "gendetect.evaluation.protocols",
    "generate_dataset": "gendetect.generation.build",
    # run configs: what `--config FILE` holds, and the library form of `gendetect train`
    "Recipe": "gendetect.runs",
    "TrainRun": "gendetect.runs",
    "GenerateRun": "gendetect.runs",
    "train": "gendetect.runs",
    "EngineOptions": "gendetect.scale.options",
}


_lazy_getattr, __dir__ = lazy_exports(__name__, _EXPORTS)


def __getattr__(name: str) -> Any:
    if name != "__version__":
        return _lazy_getattr(name)
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("gendetect")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        value = "0.0.0"
    globals()[name] = value  # later look-ups skip this function
    return value


__all__ = [
    "DetectionPipeline",
    "Detector",
    "EngineOptions",
    "FeatureExtractor",
    "GendetectError",
    "GenerateRun",
    "ProtocolConfig",
    "Recipe",
    "ScanRow",
    "TrainRun",
    "__version__",
    "create_detector",
    "create_extractor",
    "detect",
    "expand_inputs",
    "generate_dataset",
    "list_detectors",
    "list_extractors",
    "load_model",
    "run_protocol",
    "scan",
    "scan_paths",
    "train",
    "train_pipeline",
]
