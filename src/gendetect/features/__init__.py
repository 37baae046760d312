"""Feature extractors: the registry and the weight-free forensic features."""

from gendetect.features import (
    forensic as forensic,  # imported to register the built-ins
    periodic as periodic,
    rgb as rgb,
    simple as simple,
)
from gendetect.features.base import (
    EXTRACTORS as EXTRACTORS,
    FeatureExtractor as FeatureExtractor,
    create_extractor as create_extractor,
    list_extractors as list_extractors,
)

# torch-based extractors: imported only when created (the 'clip' extra)
EXTRACTORS.register_lazy("openclip", "gendetect.features.clip:OpenClipExtractor")
EXTRACTORS.register_lazy("timm", "gendetect.features.imagenet:TimmExtractor")
EXTRACTORS.register_lazy("hf-clip", "gendetect.features.hf_clip:HFClipExtractor")
EXTRACTORS.register_lazy("dnf", "gendetect.features.dnf:DNFExtractor")  # the 'diffusion' extra
EXTRACTORS.register_lazy("zoo-net", "gendetect.zoo.extractor:ZooNetExtractor")  # published detectors (gendetect.zoo)

__all__ = ["EXTRACTORS", "FeatureExtractor", "create_extractor", "list_extractors"]
