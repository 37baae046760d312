"""CLIP image embeddings through Hugging Face transformers (``CLIPModel``), e.g. ``openai/clip-vit-large-patch14``.

The same role as the ``openclip`` extractor, for checkpoints published in transformers format. Files
(``config.json``, ``model.safetensors``, ``preprocessor_config.json``) come through the gendetect weights resolver,
so offline misses fail at once, naming every missing file, with one command that fetches them all. Preprocessing
(mean, std, crop size) comes from the checkpoint's ``preprocessor_config.json``. ``model="test-tiny-clip",
pretrained="random"`` builds a tiny random ``CLIPConfig`` for tests.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from gendetect.errors import require
from gendetect.features.base import EXTRACTORS
from gendetect.features.torch_base import TorchExtractor
from gendetect.hub import resolve_hub_files

logger = logging.getLogger(__name__)

_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")
_TINY = {
    "text_config": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": 16,
    },
    "vision_config": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": 32,
        "patch_size": 8,
    },
    "projection_dim": 16,
}
_OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@EXTRACTORS.register("hf-clip")
class HFClipExtractor(TorchExtractor):
    """``CLIPModel.get_image_features`` embeddings.

    Args:
        model: hub id ("openai/clip-vit-large-patch14", ``@REV`` allowed), a local checkpoint folder, or
            "test-tiny-clip" (with ``pretrained="random"``).
        pretrained: "hub" (load the checkpoint) or "random" (explicit random weights, tests and benchmarks only).
        preprocess: "center-crop" (no resizing) or "model" (the checkpoint's processor: resize + crop).
        normalize: L2-normalise the embeddings.
        device: "cpu" or "cuda".
        batch_size: images per forward pass.
    """

    name = "hf-clip"

    def __init__(
        self,
        model: str = "openai/clip-vit-large-patch14",
        pretrained: str = "hub",
        preprocess: str = "center-crop",
        normalize: bool = False,
        device: str = "cpu",
        batch_size: int = 32,
    ) -> None:
        self.model = model
        self.pretrained = pretrained
        self.preprocess = preprocess
        self.normalize = normalize
        self.device = device
        self.batch_size = batch_size
        self._net = None
        self._load()

    def _build(self) -> tuple[Any, tuple[int, int], Any, Any, Any]:
        transformers = require("transformers", "clip", "the hf-clip extractor")
        CLIPConfig, CLIPImageProcessor, CLIPModel = (
            transformers.CLIPConfig,
            transformers.CLIPImageProcessor,
            transformers.CLIPModel,
        )
        if self.pretrained == "random":
            if self.model != "test-tiny-clip":
                raise ValueError("pretrained='random' is only for model='test-tiny-clip' (tests)")
            logger.warning("hf-clip %s with RANDOM weights: tests and benchmarks only", self.model)
            net = CLIPModel(CLIPConfig(**_TINY))
            size = _TINY["vision_config"]["image_size"]
            processor = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
        else:
            folder = self._checkpoint_dir()
            net = CLIPModel.from_pretrained(folder)
            processor = CLIPImageProcessor.from_pretrained(folder)
        net.eval().to(self.device)
        crop = processor.crop_size
        h, w = (int(crop), int(crop)) if isinstance(crop, int) else (int(crop["height"]), int(crop["width"]))

        def transform(image: Any) -> Any:
            return processor(images=image, return_tensors="pt")["pixel_values"][0]

        mean = tuple(processor.image_mean or _OPENAI_MEAN)
        std = tuple(processor.image_std or _OPENAI_STD)
        return net, (h, w), mean, std, transform

    def _checkpoint_dir(self) -> str:
        local = Path(self.model).expanduser()
        if local.is_dir():
            return str(local)
        paths = list(resolve_hub_files(f"hf-hub:{self.model}", _FILES, what=f"CLIP {self.model}").values())
        if len({p.parent for p in paths}) == 1:
            return str(paths[0].parent)
        tmp = Path(tempfile.mkdtemp(prefix="gendetect-hfclip-"))  # files from different caches: gather them
        for p in paths:
            shutil.copy(p, tmp / p.name)
        return str(tmp)

    def _embed(self, pixels: Any) -> Any:
        import torch

        out = self._net.get_image_features(pixel_values=pixels)
        out = out if isinstance(out, torch.Tensor) else out.pooler_output
        return torch.nn.functional.normalize(out, dim=-1) if self.normalize else out
