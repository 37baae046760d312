"""``cnn``: a ResNet (ResNet-50 by default) trained end to end on image-shaped features: DNF maps or RGB pixels.

The rows of ``X`` are flattened ``(C, H, W)`` maps, as the ``dnf`` and ``rgb`` extractors produce them; the detector
reshapes them to ``input_shape`` (inferred for square 3- or 4-channel maps), standardises each channel with the
training set's statistics and trains a timm ResNet with one output logit through the generic loop of
:mod:`gendetect.detectors.torch_loop` (augmentations, validation split, early stopping, checkpoints, resume). Rows
stay float32 (``input_dtype``): image-sized rows in float64 would double the memory.

Initialisation (``pretrained``):

* ``"imagenet"`` loads the architecture's ImageNet weights (timm's hub repository, e.g. ``timm/resnet50.tv_in1k``:
  the torchvision weights CNNDetection and DNF start from) through the gendetect weights resolver. Missing weights
  are an error (:class:`~gendetect.errors.WeightsNotFoundError`) that names them and the command that fetches
  them: nothing falls back to random weights unless asked to;
* ``"imagenet-or-scratch"`` asks for that fallback: ImageNet weights when found, else training **from scratch** with
  a logged warning; which one happened is written in the saved config (``training.init``);
* ``"scratch"`` (or ``"none"``) trains from scratch on purpose;
* a file path or ``hf-hub:ORG/REPO`` names other weights (a miss raises).

Such a detector is costly to fit, so it validates itself (the base class's ``validates_itself`` and ``held_out``):
``train_pipeline`` fits it once and chooses the threshold on its held-out validation split instead of fitting it
five more times for cross-validation.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import numpy as np

from gendetect.detectors.base import DETECTORS, Detector
from gendetect.errors import ModelFormatError, WeightsNotFoundError

logger = logging.getLogger(__name__)

SCRATCH = ("scratch", "none")  # pretrained values that train from random weights on purpose
IMAGENET_OR_SCRATCH = "imagenet-or-scratch"  # ImageNet weights when found, else from scratch (stated, never silent)


def _torch() -> Any:
    from gendetect.errors import require

    return require("torch", "clip", "the cnn detector"), require("timm", "clip", "the cnn detector")


def infer_input_shape(n_features: int) -> tuple[int, int, int]:
    """``(C, S, S)`` for a flattened square map of 3, 4 or 1 channels; raises when none fits."""
    for c in (3, 4, 1):
        side = math.isqrt(n_features // c) if n_features % c == 0 else 0
        if side and c * side * side == n_features:
            return (c, side, side)
    raise ValueError(
        f"cannot infer the map shape of {n_features}-long feature rows (not a square 3-, 4- or 1-channel map); "
        "pass input_shape=[C, H, W] (the extractor's map_shape)."
    )


@DETECTORS.register("cnn")
class CNNDetector(Detector):
    """A timm ResNet on image-shaped feature rows (``dnf`` maps or ``rgb`` pixels), one logit for P(fake).

    Args:
        arch: timm architecture (``"resnet50.tv_in1k"``: ResNet-50 with torchvision's ImageNet weights; tests use
            ``"test_resnet"``).
        pretrained: ``"imagenet"`` (the architecture's timm hub weights; an error when missing),
            ``"imagenet-or-scratch"`` (those weights, or from scratch with a warning when missing), ``"scratch"``
            (or ``"none"``: from scratch), or a weights file / ``hf-hub:ORG/REPO`` (must resolve).
        input_shape: ``[C, H, W]`` of a row; ``None`` infers a square 3-, 4- or 1-channel map.
        epochs: maximum training epochs.
        batch_size: rows per step.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        val_fraction: stratified validation share (early stopping, and the threshold in ``train_pipeline``).
        patience: epochs without a lower validation loss before stopping (0 = never).
        augment: :class:`~gendetect.detectors.torch_loop.AugmentConfig` fields, e.g. ``{"flip": true, "crop": 224}``;
            blur and JPEG only for ``rgb`` inputs (see :mod:`gendetect.detectors.torch_loop`). ``None`` = random flips
            only.
        checkpoint_dir: checkpoints and resume (a folder, ``"auto"`` for one under the cache keyed by config and
            data, or ``None`` for none).
        device: "cpu" or "cuda".
        random_state: seed of the initial weights, the split, the data order and the augmentations.
    """

    name = "cnn"
    _state_arrays = ("mean_", "scale_", "input_shape_")
    input_dtype = np.float32  # image-sized rows: float64 would double the memory

    def __init__(
        self,
        arch: str = "resnet50.tv_in1k",
        pretrained: str = "imagenet",
        input_shape: list[int] | None = None,
        epochs: int = 20,
        batch_size: int = 32,
        lr: float = 1e-4,
        weight_decay: float = 1e-4,
        val_fraction: float = 0.2,
        patience: int = 3,
        augment: dict[str, Any] | None = None,
        checkpoint_dir: str | None = None,
        device: str = "cpu",
        random_state: int = 0,
    ) -> None:
        self.arch = arch
        self.pretrained = pretrained
        self.input_shape = input_shape
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.val_fraction = val_fraction
        self.patience = patience
        self.augment = augment
        self.checkpoint_dir = checkpoint_dir
        self.device = device
        self.random_state = random_state

    @property
    def validates_itself(self) -> bool:
        """True with a validation split: ``train_pipeline`` takes threshold scores from the held-out validation
        split of one fit (:meth:`~gendetect.detectors.Detector.held_out`)."""
        return bool(self.val_fraction and self.val_fraction > 0)

    # -- fitting ---------------------------------------------------------------------------------------------------
    def _fit(self, X: np.ndarray, target: np.ndarray) -> None:
        torch, _ = _torch()
        from gendetect.detectors.torch_loop import AugmentConfig, TrainConfig, train_binary

        shape = tuple(int(v) for v in self.input_shape) if self.input_shape else infer_input_shape(X.shape[1])
        if int(np.prod(shape)) != X.shape[1]:
            raise ValueError(f"input_shape {list(shape)} does not hold rows of {X.shape[1]} features.")
        images = X.reshape(-1, *shape)
        self.input_shape_ = np.asarray(shape, dtype=np.int64)
        self.mean_ = images.mean(axis=(0, 2, 3)).astype(np.float64)
        std = images.std(axis=(0, 2, 3)).astype(np.float64)
        self.scale_ = np.where(std < 1e-8, 1.0, std)
        torch.manual_seed(self.random_state)
        self.net_, self.init_ = self._build(shape[0], load_pretrained=True)
        config = TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            val_fraction=self.val_fraction,
            patience=self.patience,
            seed=self.random_state,
            device=self.device,
            checkpoint_dir=self.checkpoint_dir,
            augment=AugmentConfig.from_dict(self.augment),
        )
        result = train_binary(self.net_, images, target.astype(np.int64), config, callbacks=self._callbacks())
        self.net_.to("cpu")
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.validation_index_ = result.val_index
        self.validation_scores_ = 0.5 * (1.0 + np.tanh(0.5 * result.val_scores))  # P(fake) of the held-out rows
        self.validation_scheme_ = (
            f"held-out {self.val_fraction:.0%} stratified validation split of one fit (also used for early "
            f"stopping; best epoch {result.best_epoch} of {len(result.history)})"
        )

    def _callbacks(self) -> list[Any]:
        """Per-epoch ``callback(epoch, record)`` for the training loop: the ``epoch_callbacks`` attribute, when set
        (progress reporting, tests; not a hyper-parameter, so not saved or cloned)."""
        return list(getattr(self, "epoch_callbacks", ()))

    def _build(self, channels: int, *, load_pretrained: bool) -> tuple[Any, str]:
        """``(standardise + ResNet module, how it was initialised)``."""
        _, timm = _torch()
        try:
            net = timm.create_model(self.arch, pretrained=False, num_classes=1, in_chans=channels)
        except RuntimeError as e:  # timm's unknown-model error
            raise ValueError(f"cnn arch {self.arch!r}: {e}") from e
        init = f"scratch (pretrained={self.pretrained!r})"
        if load_pretrained and self.pretrained not in SCRATCH:
            init = self._load_pretrained(net, channels)
        return _Standardized(net, self.mean_, self.scale_), init

    def _load_pretrained(self, net: Any, channels: int) -> str:
        from safetensors.torch import load_file

        from gendetect.hub import resolve_weights

        spec = self.pretrained
        if spec in ("imagenet", IMAGENET_OR_SCRATCH):
            fallback = spec == IMAGENET_OR_SCRATCH
            hub_id = net.pretrained_cfg.get("hf_hub_id")
            if not hub_id:
                if not fallback:
                    raise WeightsNotFoundError(
                        f"cnn {self.arch}: timm knows no ImageNet weights for this architecture. Choose an arch with "
                        f"them (e.g. resnet50.tv_in1k), pass a weights file as pretrained, pretrained='scratch' to "
                        f"train from scratch, or pretrained='{IMAGENET_OR_SCRATCH}'."
                    )
                logger.warning("cnn %s has no ImageNet weights in timm: training FROM SCRATCH", self.arch)
                return f"scratch (no ImageNet weights known for {self.arch})"
            try:
                path = resolve_weights(f"hf-hub:{hub_id}", filename="model.safetensors", what=f"{self.arch} weights")
            except WeightsNotFoundError as e:
                if not fallback:
                    raise WeightsNotFoundError(
                        f"cnn {self.arch}: the ImageNet weights {hub_id} (model.safetensors) are not available. {e} "
                        f"To train without them, pass pretrained='{IMAGENET_OR_SCRATCH}' (from scratch when missing, "
                        "stated in the saved config) or pretrained='scratch'."
                    ) from e
                logger.warning("cnn %s: ImageNet weights unavailable, training FROM SCRATCH. %s", self.arch, e)
                return f"scratch (ImageNet weights {hub_id} not found; fetch them to start from ImageNet)"
        else:
            path = resolve_weights(spec, filename="model.safetensors", what=f"{self.arch} weights")
        state = load_file(str(path))
        classifier = net.pretrained_cfg.get("classifier", "fc")
        state = {k: v for k, v in state.items() if not k.startswith(f"{classifier}.")}
        first = net.pretrained_cfg.get("first_conv", "conv1") + ".weight"
        if channels != 3 and first in state:
            from timm.models import adapt_input_conv

            state[first] = adapt_input_conv(channels, state[first])
        missing, unexpected = net.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith(f"{classifier}.")]
        if missing or unexpected:
            raise ModelFormatError(
                f"{path} does not fit {self.arch}: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
        source = net.pretrained_cfg.get("hf_hub_id") if spec in ("imagenet", IMAGENET_OR_SCRATCH) else spec
        return f"imagenet ({path.name} of {source})"

    # -- inference -------------------------------------------------------------------------------------------------
    def _decision(self, X: np.ndarray) -> np.ndarray:
        from gendetect.detectors.torch_loop import AugmentConfig, predict_logits

        crop = AugmentConfig.from_dict(self.augment).crop
        images = np.asarray(X, dtype=np.float32).reshape(-1, *(int(v) for v in self.input_shape_))
        logits = predict_logits(
            self.net_.to(self.device), images, batch_size=self.batch_size, crop=crop, device=self.device
        )
        self.net_.to("cpu")
        return logits

    # -- persistence -----------------------------------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        return {
            "init": getattr(self, "init_", None),
            "best_epoch": getattr(self, "best_epoch_", None),
            "history": getattr(self, "history_", None),
        }

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if hasattr(self, "classes_"):
            config["training"] = self._meta()  # how the network was initialised and trained: never implicit
        return config

    def state_dict(self) -> dict[str, np.ndarray]:
        state = super().state_dict()
        for k, v in self.net_.state_dict().items():
            state[f"net.{k}"] = v.detach().cpu().numpy()
        state["cnn_meta"] = np.frombuffer(json.dumps(self._meta()).encode(), dtype=np.uint8).copy()
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> CNNDetector:
        torch, _ = _torch()
        super().load_state_dict(state)
        self.input_shape_ = np.asarray(self.input_shape_, dtype=np.int64)
        meta = json.loads(bytes(state["cnn_meta"]).decode()) if "cnn_meta" in state else {}
        self.init_, self.best_epoch_, self.history_ = meta.get("init"), meta.get("best_epoch"), meta.get("history")
        self.net_, _ = self._build(int(self.input_shape_[0]), load_pretrained=False)
        weights = {k[len("net.") :]: torch.from_numpy(np.array(v)) for k, v in state.items() if k.startswith("net.")}
        try:
            self.net_.load_state_dict(weights)
        except RuntimeError as e:
            raise ModelFormatError(
                f"cnn weights do not fit {self.arch} with input {list(self.input_shape_)}: {e}"
            ) from e
        self.net_.eval()
        return self


_STANDARDIZED: list[Any] = []


def _Standardized(net: Any, mean: np.ndarray, scale: np.ndarray) -> Any:
    """``net((x - mean) / scale)`` as a torch module, per-channel statistics stored as buffers (saved with it)."""
    if not _STANDARDIZED:  # defined on first use: importing this module never imports torch
        torch, _ = _torch()

        class Standardized(torch.nn.Module):
            def __init__(self, net: Any, mean: np.ndarray, scale: np.ndarray) -> None:
                super().__init__()
                self.net = net
                self.register_buffer("mean", torch.tensor(np.asarray(mean), dtype=torch.float32).view(1, -1, 1, 1))
                self.register_buffer("scale", torch.tensor(np.asarray(scale), dtype=torch.float32).view(1, -1, 1, 1))

            def forward(self, x: Any) -> Any:
                return self.net((x - self.mean) / self.scale).reshape(-1)

        _STANDARDIZED.append(Standardized)
    return _STANDARDIZED[0](net, mean, scale)
