"""The generic torch training loop, re-exported where training code looks for it.

It lives in :mod:`gendetect.detectors.torch_loop`, beside the detectors that fit with it (``cnn``), so that imports
point down the pipeline: detectors never import ``gendetect.training``.
"""

from gendetect.detectors.torch_loop import (
    META_FILE,
    AugmentConfig,
    CheckpointMismatchError,
    TrainConfig,
    TrainResult,
    augment_batch,
    center_crop,
    default_checkpoint_root,
    fingerprint,
    predict_logits,
    train_binary,
)

__all__ = [
    "META_FILE",
    "AugmentConfig",
    "CheckpointMismatchError",
    "TrainConfig",
    "TrainResult",
    "augment_batch",
    "center_crop",
    "default_checkpoint_root",
    "fingerprint",
    "predict_logits",
    "train_binary",
]
