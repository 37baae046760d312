"""The published detectors' networks, re-implemented from their papers with torchvision and timm, and the
converters from each official checkpoint format.

Every network keeps the official module names, so an official state dict loads after its wrapper is removed
(``{"model": ...}``, ``{"state_dict": ...}``, a ``module.`` prefix from DataParallel, the ``vit.`` attribute of
Community Forensics' classifier). Loading is strict: a key missing or left over raises
:class:`~gendetect.errors.ModelFormatError` naming them; nothing is ever left at random initialisation.

Each architecture takes a depth (or a timm model name) so tests build the same key layout at a tiny size.
This module imports torch: it is only imported when a network is built.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from gendetect.errors import ModelFormatError, require
from gendetect.registry import Registry

NETS: Registry[Any] = Registry("zoo network")

_WRAPPERS = ("model", "state_dict", "model_state_dict", "net")


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file: ``.safetensors``, or a ``torch.save`` pickle read with ``weights_only``.

    A wrapper dict (``{"model": state_dict, "optimizer": ..., "total_steps": ...}`` as CNNDetection saves,
    ``{"state_dict": ...}``) is unwrapped; non-tensor entries are dropped.
    """
    path = os.fspath(path)
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            state: Any = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint becomes one clear error
        raise ModelFormatError(f"{path} is not a readable checkpoint (.pth/.pt or .safetensors): {e}") from e
    for key in _WRAPPERS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise ModelFormatError(f"{path}: expected a state dict (or a dict wrapping one), got {type(state).__name__}")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def strip_prefix(state: dict[str, torch.Tensor], *prefixes: str) -> dict[str, torch.Tensor]:
    """Remove the first of ``prefixes`` that every key carries (``module.`` from DataParallel, ``vit.``...)."""
    for prefix in prefixes:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def load_strict(net: nn.Module, state: dict[str, torch.Tensor], source: str) -> nn.Module:
    """Load ``state`` (cast to the network's float dtype) with every key used and none missing, else raise."""
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ModelFormatError(
            f"{source} does not fit {type(net).__name__}: {len(missing)} keys missing (e.g. {missing[:4]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:4]}). Is it the right checkpoint for this detector?"
        )
    bad = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
    if bad:
        k = bad[0]
        raise ModelFormatError(
            f"{source} does not fit {type(net).__name__}: {len(bad)} tensors of another shape, e.g. {k} "
            f"{tuple(state[k].shape)} instead of {tuple(own[k].shape)}."
        )
    net.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)
    return net


# -- NPR (Tan et al., CVPR 2024) ---------------------------------------------------------------------------------
class NPRResNet(nn.Module):
    """NPR's detector: a ResNet-50 cut after its second stage, fed the Neighbouring Pixel Relationships.

    NPR of an image ``x`` is ``x - up(down(x))`` with nearest-neighbour down- and up-sampling by 2: the residue that
    a generator's 2x up-sampling leaves in each 2x2 cell. The network scales it by 2/3, then runs a 3x3 stride-2
    stem (not ResNet's 7x7), max-pool, the first two bottleneck stages (256 and 512 channels), global average pool
    and one linear output (``fc1``). Input sides must be even; :class:`ZooNetExtractor` crops one pixel when not.

    Args:
        layers: bottleneck blocks in the two stages (``(3, 4)`` as ResNet-50; tests use ``(1, 1)``).
    """

    def __init__(self, layers: Sequence[int] = (3, 4)) -> None:
        super().__init__()
        from torchvision.models.resnet import Bottleneck, conv1x1

        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        stages = []
        inplanes = 64
        for planes, blocks, stride in ((64, layers[0], 1), (128, layers[1], 2)):
            down = nn.Sequential(conv1x1(inplanes, planes * 4, stride), nn.BatchNorm2d(planes * 4))
            mods = [Bottleneck(inplanes, planes, stride, down)]
            inplanes = planes * 4
            mods += [Bottleneck(inplanes, planes) for _ in range(1, blocks)]
            stages.append(nn.Sequential(*mods))
        self.layer1, self.layer2 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(512, 1)

    @staticmethod
    def npr(x: torch.Tensor) -> torch.Tensor:
        """``x`` minus its nearest-neighbour 2x down- then up-sampled copy: ``(N, 3, H, W)``, H and W even."""
        down = F.interpolate(x, scale_factor=0.5, mode="nearest", recompute_scale_factor=True)
        return x - F.interpolate(down, scale_factor=2.0, mode="nearest", recompute_scale_factor=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(self.npr(x) * (2.0 / 3.0)))))
        x = self.layer2(self.layer1(x))
        return self.fc1(torch.flatten(self.avgpool(x), 1))


@NETS.register("npr-resnet")
class NPRArch:
    """Builder and converter of :class:`NPRResNet`; the official ``NPR.pth`` is a bare state dict."""

    @staticmethod
    def build(layers: Sequence[int] = (3, 4)) -> nn.Module:
        return NPRResNet(layers)

    @staticmethod
    def convert(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return strip_prefix(state, "module.")


# -- CNNDetection (Wang et al., CVPR 2020) ---------------------------------------------------------------------
@NETS.register("cnndetection-resnet")
class CNNDetectionArch:
    """torchvision's ResNet-50 with a 1-output ``fc``, exactly as CNNDetection trains it.

    The released checkpoints are ``{"model": state_dict, "optimizer": ..., "total_steps": ...}`` with
    torchvision's key names.
    """

    @staticmethod
    def build(layers: Sequence[int] = (3, 4, 6, 3)) -> nn.Module:
        from torchvision.models.resnet import Bottleneck, ResNet

        return ResNet(Bottleneck, list(layers), num_classes=1)

    @staticmethod
    def convert(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return strip_prefix(state, "module.")


# -- Community Forensics (Park and Owens, CVPR 2025) -------------------------------------------------------------
@NETS.register("commfor-vit")
class CommForArch:
    """A timm ViT-S/16 (384 or 224 px) whose ``head`` is one linear output, as Community Forensics trains it.

    Its classifier wraps the timm model as ``self.vit``, so the released state dicts carry a ``vit.`` prefix.
    """

    @staticmethod
    def build(model: str = "vit_small_patch16_384.augreg_in21k_ft_in1k") -> nn.Module:
        import timm

        return timm.create_model(model, pretrained=False, num_classes=1)

    @staticmethod
    def convert(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return strip_prefix(strip_prefix(state, "module."), "vit.")


# -- CoDE (Baraldi et al., ECCV 2024) ---------------------------------------------------------------------------
class CLSFeatures(nn.Module):
    """A Hugging Face ``ViTModel`` read out at its CLS token: ``last_hidden_state[:, 0]`` (after the final
    layernorm), the feature CoDE's linear, kNN and SVM heads take (its pooler is replaced by the identity)."""

    def __init__(self, vit: nn.Module) -> None:
        super().__init__()
        self.vit = vit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vit(pixel_values=x).last_hidden_state[:, 0]


@NETS.register("code-vit")
class CoDEArch:
    """CoDE's ViT (``transformers.AutoModel.from_pretrained("aimagelab/CoDE")``), loaded from ``model.safetensors``
    and the repository's ``config.json`` (inlined as ``arch_params["config"]``).

    transformers maps the checkpoint's key names to its own (they changed between major versions); the load is
    strict all the same: any missing, unexpected or mis-shaped key raises.
    """

    @staticmethod
    def load(weights: str | os.PathLike, config: dict[str, Any]) -> nn.Module:
        import json
        import tempfile

        ViTModel = require("transformers", "clip", "CoDE").ViTModel
        path = os.path.abspath(os.fspath(weights))
        if not path.endswith(".safetensors"):
            raise ModelFormatError(f"{path}: CoDE's weights are a .safetensors file (model.safetensors)")
        with tempfile.TemporaryDirectory() as tmp:  # from_pretrained wants a folder: config + a link to the weights
            with open(os.path.join(tmp, "config.json"), "w") as f:
                json.dump(config, f)
            os.symlink(path, os.path.join(tmp, "model.safetensors"))
            vit, info = ViTModel.from_pretrained(tmp, output_loading_info=True)
        bad = {k: sorted(v) for k, v in info.items() if k != "error_msgs" and v}
        if bad or info.get("error_msgs"):
            raise ModelFormatError(f"{path} does not fit CoDE's ViT ({config.get('model_type')}): {bad or info}")
        return CLSFeatures(vit.float())


# -- RINE (Koutlis and Papadopoulos, ECCV 2024) -----------------------------------------------------------------
def _mlp(width_in: int, width: int, n: int) -> nn.Sequential:
    """Dropout, then ``n`` x (Linear, ReLU, Dropout): RINE's projection layout (Linears at indices 1, 4, 7...)."""
    layers: list[nn.Module] = [nn.Dropout()]
    for i in range(n):
        layers += [nn.Linear(width_in if i == 0 else width, width), nn.ReLU(), nn.Dropout()]
    return nn.Sequential(*layers)


class RINEHead(nn.Module):
    """RINE's trainable part on the CLS tokens of every CLIP block: ``(N, blocks, width)`` -> logit ``(N, 1)``.

    ``proj1`` projects each block's token, the Trainable Importance Estimator ``alpha`` (1, blocks, proj_dim)
    weights the blocks (softmax over blocks) before they are summed, then ``proj2`` and a 3-layer ``head``.
    """

    def __init__(self, blocks: int, width: int, nproj: int, proj_dim: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(1, blocks, proj_dim))
        self.proj1 = _mlp(width, proj_dim, nproj)
        self.proj2 = _mlp(proj_dim, proj_dim, nproj)
        self.head = nn.Sequential(
            nn.Linear(proj_dim, proj_dim),
            nn.ReLU(),
            nn.Dropout(),
            nn.Linear(proj_dim, proj_dim),
            nn.ReLU(),
            nn.Dropout(),
            nn.Linear(proj_dim, 1),
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        z = (torch.softmax(self.alpha, dim=1) * self.proj1(tokens)).sum(dim=1)
        return self.head(self.proj2(z))


class RINENet(nn.Module):
    """CLIP's image tower, read after the second LayerNorm (``ln_2``, the MLP's input) of every block at the CLS
    token, as RINE hooks it, then :class:`RINEHead`. Only the head is RINE's checkpoint; CLIP comes through the
    weights resolver (open_clip)."""

    def __init__(self, visual: nn.Module, head: RINEHead) -> None:
        super().__init__()
        self.visual = visual
        self.rine = head
        self._tokens: list[torch.Tensor] = []
        batch_first = getattr(visual.transformer, "batch_first", True)
        for block in visual.transformer.resblocks:
            block.ln_2.register_forward_hook(
                lambda _m, _i, out: self._tokens.append(out[:, 0] if batch_first else out[0])
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._tokens = []
        self.visual(x)
        tokens, self._tokens = torch.stack(self._tokens, dim=1), []
        return self.rine(tokens.float())

    def exported_state(self) -> dict[str, torch.Tensor]:
        """What ``gendetect models export`` writes: RINE's head only (CLIP stays with the resolver)."""
        return self.rine.state_dict()


@NETS.register("rine")
class RINEArch:
    """RINE: a frozen CLIP (``clip_model``/``pretrained``, open_clip) + the released head checkpoint.

    The official checkpoint is ``{k: v for k, v in model.state_dict().items() if "clip" not in k}``: ``alpha``,
    ``proj1.*``, ``proj2.*``, ``head.*``, loaded strictly into :class:`RINEHead`.
    """

    @staticmethod
    def load(
        weights: str | os.PathLike,
        clip_model: str = "ViT-L-14",
        pretrained: str = "openai",
        nproj: int = 2,
        proj_dim: int = 1024,
    ) -> nn.Module:
        state = strip_prefix(read_checkpoint(weights), "module.")
        state = {k.removeprefix("rine."): v for k, v in state.items()}  # our exported network.safetensors
        from gendetect.features.clip import OpenClipExtractor

        visual = OpenClipExtractor(model=clip_model, pretrained=pretrained, preprocess="center-crop")._net.visual
        blocks, width = len(visual.transformer.resblocks), visual.transformer.width
        head = load_strict(RINEHead(blocks, width, nproj, proj_dim), state, os.fspath(weights))
        return RINENet(visual, head)


def build_net(arch: str, weights: str | os.PathLike, arch_params: dict[str, Any] | None = None) -> nn.Module:
    """The network ``arch`` with the weights of the checkpoint ``weights`` (official format or converted), in
    eval mode; raises :class:`~gendetect.errors.ModelFormatError` unless every key fits."""
    spec = NETS.get(arch)
    if hasattr(spec, "load"):  # the architecture loads its own checkpoint format (transformers)
        return spec.load(weights, **(arch_params or {})).eval()
    net = spec.build(**(arch_params or {}))
    state = spec.convert(read_checkpoint(weights))
    return load_strict(net, state, os.fspath(weights)).eval()
