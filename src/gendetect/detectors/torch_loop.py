"""One generic torch training loop for binary (real/fake) networks: it knows nothing about any particular model.

It sits in ``detectors/`` because detectors fit with it (``cnn``); :mod:`gendetect.training.torch_loop` re-exports it.

:func:`train_binary` trains any ``torch.nn.Module`` that maps a batch ``(B, C, H, W)`` to logits ``(B,)`` (or
``(B, 1)``) with a class-balanced logistic loss and gives it:

* **augmentations** of the CNNDetection / UnivFD kind under an :class:`AugmentConfig`: random horizontal flip, random
  crop (centre crop at evaluation), Gaussian blur and JPEG re-compression. Blur and JPEG model what happens to an
  *image* on its way to the detector, so they belong to RGB inputs (the ``rgb`` extractor, values in [0, 255]). On
  Diffusion Noise Feature maps only the geometric ones (flip, crop) make sense: a JPEG of a noise map is not the map
  of a JPEG; to make a DNF detector robust to compression, compress the images before extraction;
* a stratified **validation split** (``val_fraction``), **early stopping** on the validation loss (``patience``) and
  the best epoch's weights restored at the end;
* **checkpoints** after every epoch in ``checkpoint_dir`` (safetensors + JSON, never pickle) and **resume**: rerunning
  the same training with the same ``checkpoint_dir`` continues after the last completed epoch, and ends exactly as an
  uninterrupted run would (the data order and augmentations of epoch ``e`` depend only on ``seed`` and ``e``).
  A checkpoint of a different config or different data is refused, never silently mixed in.

Checkpoint folder layout::

    checkpoint.json            written last, atomically: epoch, history, best epoch, fingerprint of config + data
    epoch-0003.safetensors     model + optimizer state after epoch 3 (older ones are deleted)
    best-0002.safetensors      model weights of the best epoch so far
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gendetect.atomic import atomic_write, user_mode
from gendetect.errors import GendetectError
from gendetect.features.torch_base import require_torch
from gendetect.hub import cache_root
from gendetect.imageio import center_box

logger = logging.getLogger(__name__)

META_FILE = "checkpoint.json"


class CheckpointMismatchError(GendetectError):
    """A checkpoint folder holds a run of another config or other data."""


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentations (CNNDetection / UnivFD kind). Evaluation only applies the centre crop."""

    flip: bool = True  # random horizontal flip (p = 0.5)
    crop: int | None = None  # random square crop of this side when training, centre crop when evaluating
    blur_prob: float = 0.0  # probability of a Gaussian blur (CNNDetection's "blur+jpeg (0.5)" uses 0.5)
    blur_sigma: tuple[float, float] = (0.0, 3.0)  # blur sigma drawn uniformly in this range
    jpeg_prob: float = 0.0  # probability of JPEG re-compression: 3-channel inputs with values in [0, 255] only
    jpeg_quality: tuple[int, int] = (30, 100)  # JPEG quality drawn uniformly in this range

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> AugmentConfig:
        d = dict(d or {})
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(
                f"unknown augmentation options {sorted(unknown)}; valid: {sorted(cls.__dataclass_fields__)}"
            )
        for key in ("blur_sigma", "jpeg_quality"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


@dataclass(frozen=True)
class TrainConfig:
    """How :func:`train_binary` trains."""

    epochs: int = 10  # maximum passes over the training rows
    batch_size: int = 32  # rows per optimisation step
    lr: float = 1e-4  # AdamW learning rate
    weight_decay: float = 0.0  # AdamW weight decay
    val_fraction: float = 0.2  # stratified share of the rows held out for validation (0 = none: no early stopping)
    patience: int = 3  # stop after this many epochs without a lower validation loss (0 = never stop early)
    seed: int = 0  # data split, order and augmentations
    device: str = "cpu"  # "cpu" or "cuda"
    checkpoint_dir: str | None = None  # folder for checkpoints and resume; "auto" = cache/checkpoints/<fingerprint>
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class TrainResult:
    """What a training run did. ``val_scores`` are the restored (best) model's logits on the ``val_index`` rows."""

    history: list[dict[str, float]]
    best_epoch: int
    stopped_early: bool
    resumed_after: int | None  # the last epoch found in the checkpoint folder, None for a fresh run
    val_index: np.ndarray
    val_scores: np.ndarray
    checkpoint_dir: str | None


# -- augmentations -------------------------------------------------------------------------------------------------
def center_crop(x: Any, size: int | None) -> Any:
    """Central ``size`` x ``size`` crop of a batch ``(B, C, H, W)`` (unchanged when ``size`` is None or too big)."""
    if size is None or (x.shape[-1] <= size and x.shape[-2] <= size):
        return x
    left, top, right, bottom = center_box(x.shape[-1], x.shape[-2], (size, size))  # the PIL crop's centring
    return x[..., top:bottom, left:right]


def augment_batch(x: Any, cfg: AugmentConfig, gen: Any) -> Any:
    """Random augmentations of a batch ``(B, C, H, W)`` float tensor, drawn from the torch generator ``gen``."""
    torch = require_torch()
    b = x.shape[0]
    u = torch.rand(b, 4, generator=gen)  # flip, blur, jpeg, and a spare draw per row: fixed consumption of `gen`
    if cfg.crop is not None and (x.shape[-1] > cfg.crop or x.shape[-2] > cfg.crop):
        tops = torch.randint(0, x.shape[-2] - cfg.crop + 1, (b,), generator=gen)
        lefts = torch.randint(0, x.shape[-1] - cfg.crop + 1, (b,), generator=gen)
        x = torch.stack([x[i, :, t : t + cfg.crop, le : le + cfg.crop] for i, (t, le) in enumerate(zip(tops, lefts))])
    else:
        x = x.clone()
    if cfg.flip:
        flip = u[:, 0] < 0.5
        x[flip] = x[flip].flip(-1)
    if cfg.blur_prob > 0:
        from torchvision.transforms.functional import gaussian_blur

        lo, hi = cfg.blur_sigma
        sigmas = lo + (hi - lo) * torch.rand(b, generator=gen)
        for i in torch.nonzero(u[:, 1] < cfg.blur_prob).flatten().tolist():
            s = float(sigmas[i])
            if s > 0.05:
                k = 2 * int(np.ceil(3 * s)) + 1
                x[i] = gaussian_blur(x[i : i + 1], [k, k], [s, s])[0]
    if cfg.jpeg_prob > 0:
        if x.shape[1] != 3:
            raise ValueError(
                f"JPEG augmentation needs 3-channel images in [0, 255] (the 'rgb' extractor); got {x.shape[1]} "
                "channels. On DNF maps use flip/crop only (compress the images before extraction instead)."
            )
        qualities = torch.randint(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1, (b,), generator=gen)
        for i in torch.nonzero(u[:, 2] < cfg.jpeg_prob).flatten().tolist():
            x[i] = _jpeg(x[i], int(qualities[i]))
    return x


def _jpeg(img: Any, quality: int) -> Any:
    """JPEG round trip (PIL, 4:2:0) of one ``(3, H, W)`` float tensor with values in [0, 255]."""
    import io

    from PIL import Image

    torch = require_torch()
    u8 = img.detach().clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="JPEG", quality=quality)
    out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.float32)
    return torch.from_numpy(out).permute(2, 0, 1).to(img.device, img.dtype)


# -- checkpoints ---------------------------------------------------------------------------------------------------


def _save_tensors(path: Path, tensors: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
    os.replace(user_mode(tmp), path)


def _optimizer_split(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """An optimizer ``state_dict`` as (tensors for safetensors, JSON-able rest)."""
    torch = require_torch()
    tensors, rest = {}, {"param_groups": state["param_groups"], "state": {}}
    for pid, slots in state["state"].items():
        rest["state"][str(pid)] = {}
        for key, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value
            else:
                rest["state"][str(pid)][key] = value
    return tensors, rest


def _optimizer_join(tensors: dict[str, Any], rest: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {int(pid): dict(slots) for pid, slots in rest["state"].items()}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": rest["param_groups"]}


def fingerprint(model: Any, X: np.ndarray, y: np.ndarray, config: TrainConfig) -> str:
    """Hash of what determines a run: the config (less where it runs and checkpoints), the model's initial state
    (names and values) and the data."""
    h = hashlib.sha256()
    cfg = asdict(config)
    for key in ("device", "checkpoint_dir"):
        cfg.pop(key)
    h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
    for k, v in model.state_dict().items():  # names and initial values: other initial weights are another run
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    h.update(str(X.shape).encode())
    h.update(np.ascontiguousarray(X).view(np.uint8).data)
    h.update(np.ascontiguousarray(y).astype(np.int64).tobytes())
    return h.hexdigest()[:16]


def default_checkpoint_root() -> Path:
    return cache_root() / "checkpoints"


# -- the loop ------------------------------------------------------------------------------------------------------
def _split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(y)
    if fraction <= 0 or min(np.bincount(y, minlength=2)) < 2:
        if fraction > 0:
            logger.warning("too few rows of one class for a validation split; training without one")
        return np.arange(n), np.zeros(0, dtype=np.int64)
    from sklearn.model_selection import train_test_split

    n_val = max(2, round(fraction * n))
    train_idx, val_idx = train_test_split(np.arange(n), test_size=n_val, stratify=y, random_state=seed)
    return np.sort(train_idx), np.sort(val_idx)


def _batches(n: int, size: int) -> list[tuple[int, int]]:
    """Batch bounds; a trailing batch of one row is merged into the previous one (batch norm needs two rows)."""
    bounds = [(s, min(s + size, n)) for s in range(0, n, size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def predict_logits(
    model: Any, X: np.ndarray, *, batch_size: int = 64, crop: int | None = None, device: str = "cpu"
) -> np.ndarray:
    """Logits ``(N,)`` float64 of ``model`` (eval mode) on rows ``X`` ``(N, C, H, W)``, centre-cropped to ``crop``."""
    torch = require_torch()
    model.eval()
    out = []
    with torch.no_grad():
        for s, e in _batches(len(X), batch_size) if len(X) else []:
            xb = center_crop(torch.from_numpy(np.ascontiguousarray(X[s:e], dtype=np.float32)), crop).to(device)
            out.append(model(xb).reshape(-1).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def train_binary(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    config: TrainConfig,
    *,
    callbacks: Sequence[Callable[[int, dict[str, float]], None]] = (),
) -> TrainResult:
    """Train ``model`` on ``X`` ``(N, C, H, W)`` float32 and ``y`` ``(N,)`` in {0, 1} (1 = fake); see the module doc.

    ``callbacks`` are called as ``callback(epoch, record)`` after each epoch's checkpoint is written (an exception
    raised there, e.g. ``KeyboardInterrupt``, stops training with that epoch saved). The model ends in eval mode with
    the best epoch's weights.
    """
    torch = require_torch()
    y = np.asarray(y).astype(np.int64)
    model.to(config.device)
    train_idx, val_idx = _split(y, config.val_fraction, config.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    pos = float(y[train_idx].mean())
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor((1 - pos) / max(pos, 1e-6), device=config.device))

    ckpt: Path | None = None
    fp = fingerprint(model, X, y, config) if config.checkpoint_dir else ""
    if config.checkpoint_dir == "auto":
        ckpt = default_checkpoint_root() / fp
    elif config.checkpoint_dir:
        ckpt = Path(config.checkpoint_dir)
    history: list[dict[str, float]] = []
    best = {"epoch": -1, "loss": float("inf"), "bad": 0}
    start, resumed_after, finished = 0, None, False
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if ckpt is not None and (ckpt / META_FILE).is_file():
        meta = json.loads((ckpt / META_FILE).read_text())
        if meta.get("fingerprint") != fp:
            raise CheckpointMismatchError(
                f"{ckpt} holds a checkpoint of another training run (other config, model or data: fingerprint "
                f"{meta.get('fingerprint')} != {fp}). Use another checkpoint_dir, or delete that folder to start over."
            )
        from safetensors.torch import load_file

        tensors = load_file(str(ckpt / meta["file"]))
        model.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")})
        opt.load_state_dict(_optimizer_join(tensors, meta["optimizer"]))
        history, best, finished = meta["history"], meta["best"], meta.get("finished", False)
        best_state = load_file(str(ckpt / meta["best_file"])) if meta.get("best_file") else best_state
        start = resumed_after = meta["epoch"]
        start += 1
        logger.info("resuming training from %s after epoch %d", ckpt, meta["epoch"])
    stopped_early = bool(finished and len(history) < config.epochs)

    for epoch in range(start, 0 if finished else config.epochs):
        gen = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
        order = train_idx[torch.randperm(len(train_idx), generator=gen).numpy()]
        model.train()
        total, count = 0.0, 0
        for s, e in _batches(len(order), config.batch_size):
            idx = np.sort(order[s:e])
            xb = augment_batch(torch.from_numpy(np.ascontiguousarray(X[idx], dtype=np.float32)), config.augment, gen)
            yb = torch.from_numpy(y[idx]).float().to(config.device)
            loss = loss_fn(model(xb.to(config.device)).reshape(-1), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, count = total + float(loss.detach()) * len(idx), count + len(idx)
        record = {"epoch": epoch, "train_loss": total / max(count, 1)}
        if len(val_idx):
            logits = predict_logits(
                model, X[val_idx], batch_size=config.batch_size, crop=config.augment.crop, device=config.device
            )
            yv = torch.from_numpy(y[val_idx]).float()
            record["val_loss"] = float(
                torch.nn.functional.binary_cross_entropy_with_logits(torch.from_numpy(logits), yv.double())
            )
            record["val_acc"] = float(np.mean((logits > 0) == (y[val_idx] == 1)))
        monitor = record.get("val_loss", record["train_loss"])
        improved = monitor < best["loss"] - 1e-12 or not len(val_idx)
        if improved:
            best = {"epoch": epoch, "loss": monitor, "bad": 0}
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            best["bad"] += 1
        history.append(record)
        stop = bool(len(val_idx) and config.patience and best["bad"] >= config.patience)
        last = stop or epoch == config.epochs - 1
        if ckpt is not None:
            _write_checkpoint(ckpt, epoch, model, opt, best_state if improved else None, history, best, fp, last)
        logger.info("epoch %d: %s", epoch, {k: round(v, 4) for k, v in record.items() if k != "epoch"})
        for cb in callbacks:
            cb(epoch, record)
        if stop:
            stopped_early = True
            logger.info("early stop after epoch %d (best epoch %d)", epoch, best["epoch"])
            break

    model.load_state_dict(best_state)
    model.eval()
    val_scores = (
        predict_logits(model, X[val_idx], batch_size=config.batch_size, crop=config.augment.crop, device=config.device)
        if len(val_idx)
        else np.zeros(0)
    )
    return TrainResult(
        history, int(best["epoch"]), stopped_early, resumed_after, val_idx, val_scores, str(ckpt) if ckpt else None
    )


def _write_checkpoint(
    ckpt: Path,
    epoch: int,
    model: Any,
    opt: Any,
    best_state: dict[str, Any] | None,
    history: list[dict[str, float]],
    best: dict[str, Any],
    fp: str,
    finished: bool,
) -> None:
    ckpt.mkdir(parents=True, exist_ok=True)
    old = json.loads((ckpt / META_FILE).read_text()) if (ckpt / META_FILE).is_file() else {}
    opt_tensors, opt_rest = _optimizer_split(opt.state_dict())
    name = f"epoch-{epoch:04d}.safetensors"
    _save_tensors(ckpt / name, {**{f"model.{k}": v for k, v in model.state_dict().items()}, **opt_tensors})
    best_file = old.get("best_file")
    if best_state is not None:
        best_file = f"best-{epoch:04d}.safetensors"
        _save_tensors(ckpt / best_file, best_state)
    meta = {
        "epoch": epoch,
        "file": name,
        "best_file": best_file,
        "best": best,
        "history": history,
        "optimizer": opt_rest,
        "fingerprint": fp,
        "finished": finished,
    }
    atomic_write(ckpt / META_FILE, json.dumps(meta, indent=2, sort_keys=True))
    for stale in ckpt.glob("*.safetensors"):  # only after the new meta is in place
        if stale.name not in (name, best_file):
            stale.unlink()
