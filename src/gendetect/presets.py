"""Named recipes of the seed papers: a preset is a config (extractor + detector), not a code path.

==============  ==============================================================================================
preset          recipe
==============  ==============================================================================================
``univfd``      CLIP ViT-L/14 (OpenAI) raw image embeddings of a 224 px centre crop, no resizing + linear probe
``univfd-knn``  the same embeddings + cosine nearest neighbour (UnivFD's NN variant)
``coccomini``   CLIP ViT-L/14 L2-normalised embeddings + MLP
``coccomini-text``  the same, with the caption's L2-normalised text embedding concatenated (``with_text``)
``forensic``    the weight-free default recipe (no pretrained weights)
``dnf``         Diffusion Noise Features (one DDIM inversion step through ``google/ddpm-bedroom-256``, 256 px)
                + ResNet-50 from ImageNet (CNN detector; needs those weights in the cache)
==============  ==============================================================================================

``gendetect train --preset univfd --data D -o M`` trains one; ``import_univfd_head`` converts UnivFD's released
linear head (``fc_weights.pth``) into a gendetect model that reproduces the released detector exactly.

:data:`PRESETS` is a registry like the components': ``PRESETS.create(name)`` (or :func:`get_preset`) returns a
fresh copy of the recipe, and a plug-in adds its own with :func:`register_preset`.

Example:
    >>> get_preset("forensic")["detector"]
    {'name': 'logistic', 'params': {'C': 0.01}}
    >>> "univfd-knn" in PRESETS.list("univfd*")
    True
"""

from __future__ import annotations

import copy
import os
from functools import partial
from pathlib import Path
from typing import Any

from gendetect.errors import ModelFormatError
from gendetect.registry import Registry

_CLIP_L14 = {"model": "ViT-L-14", "pretrained": "openai", "preprocess": "center-crop"}

PRESETS: Registry[Any] = Registry("preset")
"""Named recipes: ``PRESETS.create(name)`` returns a deep copy of ``{"extractor": config, "detector": config}``."""


def register_preset(name: str, recipe: dict[str, Any], *, overwrite: bool = False) -> None:
    """Add the recipe ``{"extractor": {"name", "params"}, "detector": {"name", "params"}}`` under ``name``."""
    PRESETS.register(name, overwrite=overwrite)(partial(copy.deepcopy, copy.deepcopy(recipe)))


_RECIPES: dict[str, dict[str, Any]] = {
    "univfd": {
        "extractor": {"name": "openclip", "params": {**_CLIP_L14, "normalize": False}},
        "detector": {"name": "logistic", "params": {"C": 1.0}},
    },
    "univfd-knn": {
        "extractor": {"name": "openclip", "params": {**_CLIP_L14, "normalize": False}},
        "detector": {"name": "knn", "params": {"k": 1}},
    },
    "coccomini": {
        "extractor": {"name": "openclip", "params": {**_CLIP_L14, "normalize": True}},
        "detector": {"name": "mlp", "params": {"hidden": [512], "alpha": 1e-3}},
    },
    "coccomini-text": {
        "extractor": {"name": "openclip", "params": {**_CLIP_L14, "normalize": True, "with_text": True}},
        "detector": {"name": "mlp", "params": {"hidden": [512], "alpha": 1e-3}},
    },
    "forensic": {
        "extractor": {"name": "forensic", "params": {"crop": 224, "parts": ["npr", "saturation"]}},
        "detector": {"name": "logistic", "params": {"C": 0.01}},
    },
    "dnf": {
        "extractor": {"name": "dnf", "params": {"model": "google/ddpm-bedroom-256", "steps": 1, "size": 256}},
        "detector": {
            "name": "cnn",
            "params": {
                "arch": "resnet50.tv_in1k",
                "pretrained": "imagenet",
                "augment": {"flip": True, "crop": 224},
                "checkpoint_dir": "auto",
            },
        },
    },
}


for _name, _recipe in _RECIPES.items():
    register_preset(_name, _recipe)


def get_preset(name: str) -> dict[str, Any]:
    """A deep copy of the preset ``name``; unknown names list the valid ones."""
    return PRESETS.create(name)


def import_univfd_head(
    fc_weights: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    clip_model: str = "ViT-L-14",
    pretrained: str = "openai",
) -> Path:
    """Convert UnivFD's released ``fc_weights.pth`` (a 768 -> 1 linear layer) into a gendetect model directory.

    The model is UnivFD exactly: raw CLIP ViT-L/14 image embeddings of a 224 px centre crop, ``logit = w.x + b``,
    fake when ``sigmoid(logit) > 0.5``. The checkpoint is read with ``torch.load(weights_only=True)``; the CLIP
    backbone is not needed to convert, only to scan.
    """
    import torch

    from gendetect.detectors.linear import LogisticDetector
    from gendetect.pipeline import write_model_dir

    try:
        state = torch.load(fc_weights, map_location="cpu", weights_only=True)
    except Exception as e:  # any unreadable checkpoint is one clear error
        raise ModelFormatError(f"{fc_weights} is not a readable PyTorch checkpoint: {e}") from e
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    keys = {k.removeprefix("fc.").removeprefix("module."): v for k, v in state.items()}
    if set(keys) != {"weight", "bias"} or keys["weight"].ndim != 2 or keys["weight"].shape[0] != 1:
        raise ModelFormatError(
            f"{fc_weights}: expected a 1-output linear layer (weight, bias); got "
            f"{ {k: tuple(v.shape) for k, v in keys.items()} }"
        )
    detector = LogisticDetector.from_linear(keys["weight"].double().numpy(), keys["bias"].double().numpy())
    config = {
        "name": "univfd-official",
        "extractor": {
            "name": "openclip",
            "params": {
                "model": clip_model,
                "pretrained": pretrained,
                "preprocess": "center-crop",
                "normalize": False,
                "device": "cpu",
                "batch_size": 32,
                "precision": "fp32",
            },
        },
        "detector": detector.get_config(),
        "threshold": 0.5,
        "uncertain_from": None,
        "calibration": None,
        "threshold_rule": {"rule": "UnivFD's released decision rule: sigmoid(logit) > 0.5", "target_fpr": None},
        "training": {
            "data": "UnivFD (Ojha et al., CVPR 2023): ProGAN, 20 LSUN classes; released linear head",
            "source_file": str(fc_weights),
        },
    }
    return write_model_dir(out_dir, config, detector.state_dict())
