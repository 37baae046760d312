"""Detectors on feature vectors: the registry and the built-in linear, kNN and MLP detectors."""

from gendetect.detectors import knn as knn  # noqa: F401  (register built-ins)
from gendetect.detectors import linear as linear
from gendetect.detectors import mlp as mlp
from gendetect.detectors.base import (
    DETECTORS as DETECTORS,
)
from gendetect.detectors.base import (
    Detector as Detector,
)
from gendetect.detectors.base import (
    create_detector as create_detector,
)
from gendetect.detectors.base import (
    detector_from_config as detector_from_config,
)
from gendetect.detectors.base import (
    list_detectors as list_detectors,
)

__all__ = ["DETECTORS", "Detector", "create_detector", "detector_from_config", "list_detectors"]
