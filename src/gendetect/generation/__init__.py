"""Dataset generation: real/fake training sets from captions with many text-to-image generators.

* :mod:`~gendetect.generation.captions`: caption sources (COCO JSON, WIT-style TSV, .txt/.csv prompt lists).
* :mod:`~gendetect.generation.generators`: the :data:`GENERATORS` registry (sd14, sd21, sdxl, pixart, ..., glide,
  and any ``diffusers:ORG/REPO[@REV]``) and the pipeline loaders.
* :mod:`~gendetect.generation.build`: :func:`generate_dataset` -- jobs in shards on the local or Ray engine, images
  plus a Parquet manifest, resumable, with format control.

Importing this package does not import torch or diffusers; loading a generator does.
"""

from gendetect.generation.build import (
    FORMAT_POLICIES as FORMAT_POLICIES,
    GenerateTask as GenerateTask,
    GenerationResult as GenerationResult,
    SamplingSpace as SamplingSpace,
    generate_dataset as generate_dataset,
    plan_jobs as plan_jobs,
    read_models_file as read_models_file,
)
from gendetect.generation.captions import CaptionItem as CaptionItem, read_captions as read_captions
from gendetect.generation.generators import (
    GENERATORS as GENERATORS,
    GeneratorSpec as GeneratorSpec,
    get_generator as get_generator,
    list_generators as list_generators,
    load_generator as load_generator,
    register_generator as register_generator,
)

__all__ = [
    "FORMAT_POLICIES",
    "GENERATORS",
    "CaptionItem",
    "GenerateTask",
    "GenerationResult",
    "GeneratorSpec",
    "SamplingSpace",
    "generate_dataset",
    "get_generator",
    "list_generators",
    "load_generator",
    "plan_jobs",
    "read_captions",
    "read_models_file",
    "register_generator",
]
