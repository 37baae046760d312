"""Feature extractors: the registry and the weight-free forensic features."""

from gendetect.features.base import (
    EXTRACTORS as EXTRACTORS,
    FeatureExtractor as FeatureExtractor,
    create_extractor as create_extractor,
    extractor_from_config as extractor_from_config,
    list_extractors as list_extractors,
)
from gendetect.features import forensic as forensic, simple as simple  # noqa: F401  (register the built-ins)

__all__ = ["EXTRACTORS", "FeatureExtractor", "create_extractor", "extractor_from_config", "list_extractors"]
