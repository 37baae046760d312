"""Training-data augmentation: benign processing of real photos and self-made fakes made from them.

* :mod:`gendetect.augment.benign`: ``BENIGN``, named chains of processing that real photos go through in users'
  hands (resizing, JPEG/WebP, denoising, edits, screenshots, social-media copies, a camera simulation);
* :mod:`gendetect.augment.selfmade`: ``SELFMADE``, fakes without generator weights (interpolation cascades and a
  zoo of small trained decoders, torch needed for the zoo only) plus matched post-processing of real/fake pairs.

This package sits beside ``features``: it imports only numpy, Pillow and (lazily) torch, never evaluation,
training or anything above them.
"""

from gendetect.augment.benign import (
    BENIGN as BENIGN,
    OPS as OPS,
    BenignChain as BenignChain,
    benign_chain as benign_chain,
    list_benign as list_benign,
    random_benign as random_benign,
)
from gendetect.augment.selfmade import (
    SELFMADE as SELFMADE,
    DecoderZoo as DecoderZoo,
    list_selfmade as list_selfmade,
    make_selfmade_set as make_selfmade_set,
    matched_pair as matched_pair,
    train_decoder_zoo as train_decoder_zoo,
)

__all__ = [
    "BENIGN",
    "OPS",
    "SELFMADE",
    "BenignChain",
    "DecoderZoo",
    "benign_chain",
    "list_benign",
    "make_selfmade_set",
    "matched_pair",
    "random_benign",
    "train_decoder_zoo",
]
