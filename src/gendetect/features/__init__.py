"""Feature extractors: the registry and the weight-free forensic features."""

from gendetect.features import forensic as forensic  # noqa: F401  (register the built-ins)
from gendetect.features import simple as simple
from gendetect.features.base import (
    EXTRACTORS as EXTRACTORS,
)
from gendetect.features.base import (
    FeatureExtractor as FeatureExtractor,
)
from gendetect.features.base import (
    create_extractor as create_extractor,
)
from gendetect.features.base import (
    extractor_from_config as extractor_from_config,
)
from gendetect.features.base import (
    list_extractors as list_extractors,
)

__all__ = ["EXTRACTORS", "FeatureExtractor", "create_extractor", "extractor_from_config", "list_extractors"]
