"""Detectors on feature vectors: the registry and the built-in linear, kNN and MLP detectors."""

from gendetect.detectors import (
    boosting as boosting,  # imported to register the built-ins
    disentangle as disentangle,
    knn as knn,
    linear as linear,
    mlp as mlp,
    tiled as tiled,
)
from gendetect.detectors.base import (
    DETECTORS as DETECTORS,
    Detector as Detector,
    create_detector as create_detector,
    list_detectors as list_detectors,
)

DETECTORS.register_lazy("cnn", "gendetect.detectors.cnn:CNNDetector")  # torch + timm ('clip' extra)

__all__ = ["DETECTORS", "Detector", "create_detector", "list_detectors"]
