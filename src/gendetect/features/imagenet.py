"""ImageNet-trained backbones through timm (ResNet-50, ViT...): penultimate-layer features, COCOFake's baseline.

``create_extractor("timm", model="resnet50.a1_in1k")`` loads ``model.safetensors`` from the model's Hugging Face
repository (timm's ``hf_hub_id``) through the gendetect weights resolver, or from a local file
(``pretrained=PATH``); ``pretrained="random"`` builds random weights explicitly (tests and benchmarks only).
Preprocessing (input size, mean, std) comes from timm's data config for the model. Tiny test models: timm's own
``test_vit``, ``test_resnet``.
"""

from __future__ import annotations

import logging
from typing import Any

from gendetect.errors import WeightsNotFoundError, require
from gendetect.features.base import EXTRACTORS
from gendetect.features.torch_base import TorchExtractor
from gendetect.hub import resolve_weights

logger = logging.getLogger(__name__)


@EXTRACTORS.register("timm")
class TimmExtractor(TorchExtractor):
    """Globally pooled penultimate features of a timm model (``num_classes=0``).

    Args:
        model: timm model name, optionally with its pretrained tag ("resnet50.a1_in1k", "vit_base_patch16_224").
        pretrained: ``"hub"`` (the model's timm repository), ``hf-hub:ORG/REPO``, a local file, or ``"random"``.
        preprocess: ``"center-crop"`` (no resizing) or ``"model"`` (timm's eval transform: resize + crop).
        device: "cpu" or "cuda".
        batch_size: images per forward pass.
    """

    name = "timm"

    def __init__(
        self,
        model: str = "resnet50.a1_in1k",
        pretrained: str = "hub",
        preprocess: str = "center-crop",
        device: str = "cpu",
        batch_size: int = 32,
    ) -> None:
        self.model = model
        self.pretrained = pretrained
        self.preprocess = preprocess
        self.device = device
        self.batch_size = batch_size
        self._net = None
        self._load()

    def _build(self) -> tuple[Any, tuple[int, int], Any, Any, Any]:
        timm = require("timm", "clip", "ImageNet extractors")
        load_file = require("safetensors.torch", "clip", "ImageNet extractors").load_file
        net = timm.create_model(self.model, pretrained=False, num_classes=0)
        if self.pretrained == "random":
            logger.warning("timm %s with RANDOM weights (pretrained='random'): tests and benchmarks only", self.model)
        else:
            spec = self.pretrained
            if spec == "hub":
                hub_id = net.pretrained_cfg.get("hf_hub_id")
                if not hub_id:
                    raise WeightsNotFoundError(f"timm {self.model} has no hub repository; pass pretrained=PATH.")
                spec = f"hf-hub:{hub_id}"
            path = resolve_weights(spec, filename="model.safetensors", what=f"timm {self.model} weights")
            state = load_file(str(path)) if str(path).endswith(".safetensors") else _torch_load(path)
            missing, unexpected = net.load_state_dict(state, strict=False)
            if missing:
                raise WeightsNotFoundError(f"{path} does not fit timm {self.model}: missing {missing[:5]}...")
            if unexpected and not all(k.startswith(("fc.", "head", "classifier")) for k in unexpected):
                raise WeightsNotFoundError(f"{path} does not fit timm {self.model}: unexpected {unexpected[:5]}...")
        net.eval().to(self.device)
        cfg = timm.data.resolve_data_config({}, model=net)
        transform = timm.data.create_transform(**cfg)
        _, h, w = cfg["input_size"]
        return net, (h, w), cfg["mean"], cfg["std"], transform

    def _embed(self, pixels: Any) -> Any:
        return self._net(pixels)


def _torch_load(path: Any) -> dict[str, Any]:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)
