"""gendetect: tell real photographs from images made by generative models.

The library comes first; the ``gendetect`` CLI is a thin layer over these functions::

    from gendetect import load_model, scan
    for row in scan(["photo.jpg"], load_model()):      # the embedded default detector
        print(row.path, row.p_fake, row.verdict)
"""

from importlib.metadata import PackageNotFoundError, version

from gendetect.detectors import (
    Detector as Detector,
    create_detector as create_detector,
    list_detectors as list_detectors,
)
from gendetect.errors import GendetectError as GendetectError
from gendetect.features import (
    FeatureExtractor as FeatureExtractor,
    create_extractor as create_extractor,
    list_extractors as list_extractors,
)
from gendetect.pipeline import (
    DetectionPipeline as DetectionPipeline,
    ScanRow as ScanRow,
    expand_inputs as expand_inputs,
    load_model as load_model,
    scan as scan,
)

try:
    __version__ = version("gendetect")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "DetectionPipeline",
    "Detector",
    "FeatureExtractor",
    "GendetectError",
    "ScanRow",
    "__version__",
    "create_detector",
    "create_extractor",
    "expand_inputs",
    "list_detectors",
    "list_extractors",
    "load_model",
    "scan",
]
