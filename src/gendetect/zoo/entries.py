"""The catalogue of published detectors, each checked against its official repository (see ``verified`` and
``unverified`` in every entry; ``gendetect models show NAME`` prints them).

Converters (``make_config``) turn the official files into our pipeline format:

* :func:`net_config`: an end-to-end network (NPR, CNNDetection, Community Forensics) becomes the ``zoo-net``
  extractor (its logit) plus an identity logistic head, so ``P(fake) = sigmoid(logit)`` exactly as the papers;
* :func:`clip_linear_config`: UnivFD's linear head on raw CLIP ViT-L/14 embeddings becomes the ``openclip``
  extractor plus a logistic detector with the head's weight and bias.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gendetect.errors import ModelFormatError
from gendetect.zoo.entry import WeightFile, ZooEntry, identity_head, linear_head

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
_NO_GPU = "GPU: not measured (no GPU here)"


def net_config(entry: ZooEntry, paths: dict[str, Path]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``zoo-net`` extractor on the ``checkpoint`` file + identity head (see the module docstring)."""
    p = entry.params
    extractor = {
        "name": "zoo-net",
        "params": {
            "arch": p["arch"],
            "weights": str(paths["checkpoint"]),
            "arch_params": p.get("arch_params"),
            "resize": p.get("resize"),
            "resize_mode": p.get("resize_mode", "square"),
            "crop": p.get("crop"),
            "mean": list(p.get("mean", IMAGENET_MEAN)),
            "std": list(p.get("std", IMAGENET_STD)),
            "even": bool(p.get("even", False)),
            "device": "cpu",
            "batch_size": 16,
        },
    }
    detector, state = identity_head()
    return {"extractor": extractor, "detector": detector, "threshold": 0.5, "uncertain_from": None}, state


def read_linear_head(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(w (dim,), b (1,))`` float64 of a saved 1-output ``nn.Linear`` state dict (``fc.``/``module.`` allowed)."""
    from gendetect.zoo.nets import read_checkpoint, strip_prefix

    state = strip_prefix(strip_prefix(read_checkpoint(path), "module."), "fc.")
    if set(state) != {"weight", "bias"} or state["weight"].ndim != 2 or state["weight"].shape[0] != 1:
        raise ModelFormatError(
            f"{path}: expected a 1-output linear layer (weight (1, dim), bias (1,)); got "
            f"{ {k: tuple(v.shape) for k, v in state.items()} }"
        )
    return state["weight"].double().numpy().ravel(), state["bias"].double().numpy().ravel()


_NUMPY_GLOBALS = {
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("builtins", "slice"),
}


def read_sklearn_linear(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(w (dim,), b (1,))`` of a joblib-pickled scikit-learn linear classifier (CoDE's ``.sav`` heads).

    The pickle is read by a restricted unpickler: only numpy arrays and scikit-learn estimator classes may be
    named in it, so a tampered file cannot run code; then ``coef_`` (1, dim), ``intercept_`` (1,) and
    ``classes_ == [0, 1]`` are checked. ``sigmoid(w.x + b)`` is ``LogisticRegression.predict_proba``'s P(class 1).
    """
    import pickle
    from unittest import mock

    import joblib.numpy_pickle as numpy_pickle
    from sklearn.base import BaseEstimator

    class RestrictedUnpickler(numpy_pickle.NumpyUnpickler):  # type: ignore[misc,name-defined]
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) in _NUMPY_GLOBALS:
                return super().find_class(module, name)
            if module.startswith("sklearn."):
                obj = super().find_class(module, name)
                if isinstance(obj, type) and issubclass(obj, BaseEstimator):
                    return obj
            raise pickle.UnpicklingError(f"refusing {module}.{name}: not a numpy array or scikit-learn estimator")

    try:
        with mock.patch.object(numpy_pickle, "NumpyUnpickler", RestrictedUnpickler):
            clf = numpy_pickle.load(path)  # the load of the very module whose unpickler is replaced
    except Exception as e:  # noqa: BLE001 - unreadable or refused pickles are one clear error
        raise ModelFormatError(f"{path} is not a readable scikit-learn classifier pickle: {e}") from e
    coef, intercept, classes = (getattr(clf, a, None) for a in ("coef_", "intercept_", "classes_"))
    if coef is None or np.shape(coef)[0] != 1 or np.shape(intercept) != (1,) or list(np.ravel(classes)) != [0, 1]:
        raise ModelFormatError(
            f"{path}: expected a fitted binary linear classifier (coef_ (1, dim), intercept_ (1,), classes_ [0, 1]); "
            f"got {type(clf).__name__}"
        )
    return np.asarray(coef, np.float64).ravel(), np.asarray(intercept, np.float64).ravel()


def code_config(entry: ZooEntry, paths: dict[str, Path]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """CoDE: the ViT's CLS feature (``zoo-net`` with ``dim`` = hidden size) + its logistic ``head`` (.sav)."""
    import json

    p = entry.params
    vit_config = json.loads(Path(paths["config"]).read_text())
    w, b = read_sklearn_linear(paths["head"])
    dim = int(vit_config.get("hidden_size", 0))
    if w.size != dim:
        raise ModelFormatError(f"{paths['head']}: a {w.size}-feature head for a {dim}-wide ViT ({paths['config']})")
    extractor = {
        "name": "zoo-net",
        "params": {
            "arch": "code-vit",
            "weights": str(paths["checkpoint"]),
            "arch_params": {"config": vit_config},
            "resize": None,
            "resize_mode": "square",
            "crop": p.get("crop", 224),
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
            "even": False,
            "dim": dim,
            "device": "cpu",
            "batch_size": 16,
        },
    }
    detector, state = linear_head(w, b)
    return {"extractor": extractor, "detector": detector, "threshold": 0.5, "uncertain_from": None}, state


def clip_linear_config(entry: ZooEntry, paths: dict[str, Path]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``openclip`` raw image embeddings of a centre crop + the linear ``head`` file as a logistic detector."""
    p = entry.params
    w, b = read_linear_head(paths["head"])
    extractor = {
        "name": "openclip",
        "params": {
            "model": p["model"],
            "pretrained": p["pretrained"],
            "preprocess": "center-crop",
            "normalize": False,
            "with_text": False,
            "device": "cpu",
            "batch_size": 32,
            "precision": "fp32",
        },
    }
    detector, state = linear_head(w, b)
    return {"extractor": extractor, "detector": detector, "threshold": 0.5, "uncertain_from": None}, state


UNIVFD = ZooEntry(
    name="univfd",
    title="Towards Universal Fake Image Detectors that Generalize Across Generative Models",
    authors="Ojha, Li and Lee",
    venue="CVPR",
    year=2023,
    repository="https://github.com/WisconsinAIVision/UniversalFakeDetect",
    licence="MIT (the repository's LICENSE, copied next to the head in shared/weights/univfd); CLIP weights: MIT",
    trained_on="ProGAN images and LSUN reals, 20 classes (CNNDetection's training set); only the linear head is "
    "trained",
    backbone="CLIP ViT-L/14, OpenAI weights (open_clip ViT-L-14/openai, frozen), raw 768-d image embedding",
    preprocessing="centre crop 224x224 without resizing, CLIP mean/std (validate.py); fake if sigmoid(w.x+b) > 0.5",
    reported="mean AP 98.3, mean accuracy 89.1 on 8 GAN test sets (the 'Ojha' row of NPR's README table); the "
    "paper's own tables were not re-read here",
    files=(
        WeightFile(
            "head",
            "univfd/fc_weights.pth",
            url="https://github.com/WisconsinAIVision/UniversalFakeDetect/raw/main/pretrained_weights/fc_weights.pth",
            sha256="477100745713bcc957beb2b40859536859b6483fd6301b3b9293151b194c7847",
            size="4 kB",
        ),
        WeightFile(
            "backbone", "open_clip_model.safetensors", repo="timm/vit_large_patch14_clip_224.openai", size="1.7 GB"
        ),
    ),
    make_config=clip_linear_config,
    params={"model": "ViT-L-14", "pretrained": "openai"},
    verified=(
        "validate.py: model.fc.load_state_dict(torch.load(fc_weights.pth)) -> a bare {weight (1, 768), bias (1,)}",
        "validate.py: transforms CenterCrop(224) + ToTensor + Normalize(CLIP mean/std), no resize; P = sigmoid",
        "pretrained_weights/fc_weights.pth is in the repository; the sha256 is that of the copy in shared/weights",
        "the real head converts bit for bit (tests/test_pretrained.py, tests/test_zoo.py)",
    ),
    unverified=(
        "the sha256 was computed from the local copy, not from a fresh download of the GitHub URL",
        "open_clip's OpenAI ViT-L/14 equals the `clip` package the authors used (same weights, QuickGELU): "
        "not checked against their features here (the backbone cannot be downloaded here)",
        "backbone revision not pinned: the commit of timm/vit_large_patch14_clip_224.openai is unknown here",
        "the openclip extractor's centre crop puts the window at floor((H - 224) / 2) and reflect-pads images "
        "smaller than 224; torchvision's CenterCrop rounds the offset half to even and pads with zeros: a one-pixel "
        "shift on odd margins, and different borders on small images",
    ),
    cost="CPU: ~1.1 s/image (ViT-L/14, 2 cores, fp32, from the CLIP extractor's figures); " + _NO_GPU,
    extras="clip",
)

NPR = ZooEntry(
    name="npr",
    title="Rethinking the Up-Sampling Operations in CNN-based Generative Network for Generalizable Deepfake Detection",
    authors="Tan, Liu, Zhao, Wei, Gu, Liu and Wei",
    venue="CVPR",
    year=2024,
    repository="https://github.com/chuangchuangtan/NPR-DeepfakeDetection",
    licence="not stated: the repository has no LICENSE file (all rights reserved by default); research use only",
    trained_on="ProGAN, 4 LSUN classes (car, cat, chair, horse) of CNNDetection's training set",
    backbone="ResNet-50 cut after its second stage with a 3x3 stride-2 stem, from scratch on NPR residues",
    preprocessing="Resize((256, 256)) bilinear, no crop, ImageNet mean/std (test.py: no_resize False, no_crop True "
    "for ForenSynths, UniversalFakeDetect and DiffusionForensics)",
    reported="mean accuracy 92.5, mean AP 96.1 on 8 GAN test sets (ProGAN ... Deepfake; README table)",
    files=(
        WeightFile(
            "checkpoint",
            "npr/NPR.pth",
            url="https://github.com/chuangchuangtan/NPR-DeepfakeDetection/raw/main/NPR.pth",
            size="~6 MB (estimated from the architecture)",
        ),
    ),
    make_config=net_config,
    params={"arch": "npr-resnet", "arch_params": {"layers": [3, 4]}, "resize": 256, "resize_mode": "square"},
    verified=(
        "networks/resnet.py: NPR = x - interpolate(interpolate(x, 0.5, nearest), 2, nearest); conv1 3x3 stride 2 on "
        "NPR*2/3, bn1, relu, maxpool, layer1 (64), layer2 (128, stride 2) of Bottlenecks [3, 4], avgpool, fc1 512->1",
        "test.py: resnet50(num_classes=1).load_state_dict(torch.load(model_path), strict=True): a bare state dict",
        "data/datasets.py: Resize((loadSize=256, 256)) unless no_resize, crop skipped (no_crop), ImageNet Normalize",
    ),
    unverified=(
        "the file name NPR.pth comes from the README's test command (`--model_path ./NPR.pth`); the stored index "
        "of the repository did not list the binary, so the URL and its size are unconfirmed",
        "sha256 unknown: the authors publish none (`gendetect models pull npr` logs the one it downloads)",
    ),
    cost="CPU: light (two ResNet stages at 256 px, about a third of a ResNet-50); " + _NO_GPU,
    extras="clip",
)


def _cnndetection(name: str, prob: str, dropbox: str, reported: str) -> ZooEntry:
    return ZooEntry(
        name=name,
        title="CNN-generated images are surprisingly easy to spot... for now",
        authors="Wang, Wang, Zhang, Owens and Efros",
        venue="CVPR",
        year=2020,
        repository="https://github.com/PeterWang512/CNNDetection",
        licence="CC BY-NC-SA 4.0 (the repository's LICENSE.txt): non-commercial",
        trained_on=f"ProGAN images and LSUN reals, 20 classes; Blur+JPEG({prob}) augmentation",
        backbone="torchvision ResNet-50, ImageNet-initialised, fine-tuned end to end with a 1-output fc",
        preprocessing="the whole image, no resize, no crop, ImageNet mean/std (demo.py; the README's 'no crop' "
        "evaluation, which it recommends); the paper's numbers use a 224 centre crop",
        reported=reported,
        files=(
            WeightFile(
                "checkpoint",
                f"cnndetection/blur_jpg_prob{prob}.pth",
                url=f"https://www.dropbox.com/s/{dropbox}/blur_jpg_prob{prob}.pth?dl=1",
                size="unknown (the weights alone are ~100 MB; the file also holds the optimizer state)",
            ),
        ),
        make_config=net_config,
        params={"arch": "cnndetection-resnet", "arch_params": {"layers": [3, 4, 6, 3]}},
        verified=(
            "demo.py: resnet50(num_classes=1).load_state_dict(torch.load(path)['model']); ToTensor + ImageNet "
            "Normalize on the whole image; prob = sigmoid(logit)",
            "networks/base_model.py: checkpoints are {'model', 'optimizer', 'total_steps'}",
            f"weights/download_weights.sh: the Dropbox link of blur_jpg_prob{prob}.pth",
        ),
        unverified=(
            "sha256 unknown: the authors publish none",
            "networks/resnet.py is not in the stored index; torchvision's ResNet-50 key names are assumed "
            "(trainer.py builds resnet50 and replaces fc with Linear(2048, 1))",
            "the script uses ?dl=0 with wget; ?dl=1 (direct download) is used here",
        ),
        cost="CPU: a ResNet-50 on the full image (~4 GFLOPs per 224x224 tile; a 12 MP photo is ~240); " + _NO_GPU,
        extras="clip",
    )


CNNDETECTION = _cnndetection(
    "cnndetection",
    "0.5",
    "2g2jagq2jn1fd0i",
    "AP (no crop): ProGAN 100.0, StyleGAN 99.3, BigGAN 90.4, CycleGAN 97.9, StarGAN 97.5, GauGAN 98.8, "
    "Deepfake 63.1, StyleGAN2 99.1 (README)",
)
CNNDETECTION_01 = _cnndetection(
    "cnndetection-0.1",
    "0.1",
    "h7tkpcgiwuftb6g",
    "AP (no crop): ProGAN 100.0, StyleGAN 99.8, BigGAN 86.0, CycleGAN 94.9, StarGAN 99.0, GauGAN 90.8, "
    "Deepfake 84.5, StyleGAN2 99.5 (README)",
)


def _commfor(name: str, size: int, resize: int, timm_name: str) -> ZooEntry:
    return ZooEntry(
        name=name,
        title="Community Forensics: Using Thousands of Generators to Train Fake Image Detectors",
        authors="Park and Owens",
        venue="CVPR",
        year=2025,
        repository="https://github.com/JeongsooP/Community-Forensics",
        licence="not stated in the repository files read here (no LICENSE file in the stored index); check the "
        "Hugging Face model card before use",
        trained_on="Community Forensics: 2.7M images from 4803 generators (mostly Hugging Face diffusion models) "
        "plus real sets",
        backbone=f"timm ViT-S/16 {size} px ({timm_name}), fine-tuned end to end with a 1-output head",
        preprocessing=f"Resize({resize}) (shorter side, bilinear), CenterCrop({size}), ImageNet mean/std "
        "(models.py preprocess_input)",
        reported="not recorded: the paper's tables were not available here (see the paper)",
        files=(WeightFile("checkpoint", "model.safetensors", repo=f"OwensLab/commfor-model-{size}", size="~90 MB"),),
        make_config=net_config,
        params={
            "arch": "commfor-vit",
            "arch_params": {"model": timm_name},
            "resize": resize,
            "resize_mode": "short",
            "crop": size,
        },
        verified=(
            f"models.py: self.vit = timm.create_model('{timm_name}'); self.vit.head = Linear(384, 1); output sigmoid",
            f"models.py preprocess_input: Resize({resize}), CenterCrop({size}), ToTensor, ImageNet Normalize",
            f"README: checkpoints on Hugging Face, OwensLab/commfor-model-{size} (loaded with --hf_model_repo)",
        ),
        unverified=(
            "the Hugging Face file name (model.safetensors, PyTorchModelHubMixin's default) and its 'vit.' key "
            "prefix are inferred from models.py, not read from the repository",
            "revision not pinned; sha256 unknown; the README's notebook uses a separate commfor-data-preprocessor "
            "whose test transform was not read",
        ),
        cost=f"CPU: a ViT-S/16 at {size} px (~{'15' if size == 384 else '4.6'} GFLOPs); " + _NO_GPU,
        extras="clip",
    )


COMMFOR = _commfor("commfor", 384, 440, "vit_small_patch16_384.augreg_in21k_ft_in1k")
COMMFOR_224 = _commfor("commfor-224", 224, 256, "vit_small_patch16_224.augreg_in21k_ft_in1k")

CODE = ZooEntry(
    name="code",
    title="Contrasting Deepfakes Diffusion via Contrastive Learning and Global-Local Similarities",
    authors="Baraldi, Cocchi, Cornia, Baraldi, Nicolosi and Cucchiara",
    venue="ECCV",
    year=2024,
    repository="https://github.com/aimagelab/CoDE",
    licence="MIT (the repository's LICENSE; the Hugging Face card says MIT too)",
    trained_on="D3 (ELSA): LAION-400M reals and their SD 1.4, SD 2.1, SDXL and DeepFloyd IF generations",
    backbone="a ViT (transformers ViTModel, aimagelab/CoDE) trained contrastively; CLS token of the last layer",
    preprocessing="CenterCrop(224) without resizing, ImageNet mean/std (validate_d3.py; the processor's resize is "
    "off); the linear head: LogisticRegression(C=0.316, class_weight='balanced'), fake if P > 0.5",
    reported="not recorded: the paper's tables were not available here (see the paper)",
    files=(
        WeightFile("config", "config.json", repo="aimagelab/CoDE", size="0.5 kB"),
        WeightFile("checkpoint", "model.safetensors", repo="aimagelab/CoDE", size="22 MB"),
        WeightFile("head", "sklearn/linear_tot_classifier_epoch-32.sav", repo="aimagelab/CoDE", size="small"),
    ),
    make_config=code_config,
    params={"crop": 224},
    verified=(
        "CoDE_model/code_model.py: AutoModel.from_pretrained('aimagelab/CoDE'), pooler = Identity, features = "
        "last_hidden_state[:, 0, :], classifier = joblib.load(hf_hub_download(..., "
        "'sklearn/linear_tot_classifier_epoch-32.sav')), predictions = classifier.predict(features)",
        "src/inference/validate_d3.py: CenterCrop(224) + ToTensor + ImageNet Normalize; linear/knn: 0 real, 1 fake",
        "src/quantitative_evaluation/linear_training.py: the linear head is LogisticRegression(C=0.316, "
        "class_weight='balanced') on real 0 / fake 1, saved with joblib.dump",
        "the Hugging Face repository lists config.json, model.safetensors (22.1 MB), preprocessor_config.json and "
        "sklearn/ (the hub's file page), licence MIT",
    ),
    unverified=(
        "the ViT's size (hidden width) is read from config.json at load time; not known here (22 MB suggests ViT-Tiny)",
        "revision not pinned (the hub page showed commit c2a0c92, a short hash); sha256 unknown",
        "only the linear head is converted; the kNN and one-class SVM heads are not (no linear form)",
        "the head is a pickle: it is read by a restricted unpickler (numpy arrays and scikit-learn estimators only)",
    ),
    cost="CPU: a small ViT at 224 px (cheap; not measured); " + _NO_GPU,
    extras="clip",
)

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def _rine(name: str, setting: str, nproj: int, proj_dim: int, trained_on: str, seen: bool) -> ZooEntry:
    return ZooEntry(
        name=name,
        title="Leveraging Representations from Intermediate Encoder-blocks for Synthetic Image Detection",
        authors="Koutlis and Papadopoulos",
        venue="ECCV",
        year=2024,
        repository="https://github.com/mever-team/rine",
        licence="not stated: the repository has no LICENSE file in the stored index (all rights reserved by "
        "default); CLIP weights: MIT",
        trained_on=trained_on,
        backbone="CLIP ViT-L/14, OpenAI weights (open_clip ViT-L-14/openai, frozen): the CLS token after ln_2 of "
        "each of the 24 blocks",
        preprocessing="CenterCrop(224) without resizing, CLIP mean/std (src/utils.py transforms_test_1, used by "
        "demo.py and validation.py); P(fake) = sigmoid(logit)",
        reported="not recorded: the paper's tables were not available here (scripts/validation.py prints them)",
        files=(
            WeightFile(
                "checkpoint",
                f"rine/model_{setting}_trainable.pth",
                url=f"https://github.com/mever-team/rine/raw/main/ckpt/model_{setting}_trainable.pth",
                size="a few MB",
            ),
            WeightFile(
                "backbone", "open_clip_model.safetensors", repo="timm/vit_large_patch14_clip_224.openai", size="1.7 GB"
            ),
        ),
        make_config=net_config,
        params={
            "arch": "rine",
            "arch_params": {"clip_model": "ViT-L-14", "pretrained": "openai", "nproj": nproj, "proj_dim": proj_dim},
            "crop": 224,
            "mean": CLIP_MEAN,
            "std": CLIP_STD,
        },
        verified=(
            "src/models.py: hooks on every clip.visual module named '*ln_2*', stacked at token 0 -> (N, 24, 1024); "
            "proj1 = [Dropout] + nproj x [Linear, ReLU, Dropout]; z = sum(softmax(alpha, dim=1) * proj1(g)); "
            "proj2 likewise; head = Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear(proj_dim, 1)",
            "src/utils.py: checkpoints hold the non-CLIP state dict (alpha, proj1, proj2, head); "
            f"get_our_trained_model('{setting.removesuffix('class')}'): nproj {nproj}, proj_dim {proj_dim}",
            "src/utils.py transforms_test_1: CenterCrop(224) + ToTensor + CLIP Normalize; demo.py: sigmoid(logit)",
        ),
        unverified=(
            ("ckpt/model_2class_trainable.pth is in the stored index; " if not seen else "")
            + f"ckpt/model_{setting}_trainable.pth is named by src/utils.py and the README"
            + ("" if seen else ", not seen in the stored index"),
            "sha256 unknown (none published); open_clip's OpenAI ViT-L/14 is assumed equal to the `clip` package "
            "(same weights, QuickGELU, same ln_2 placement) but not checked against real features here",
            "validation.py scores Synthbuster with TenCrop(224) and the mean logit; this entry uses the single "
            "centre crop of its ProGAN evaluation",
        ),
        cost="CPU: as univfd (a CLIP ViT-L/14 forward, ~1.1 s/image) plus a small head; " + _NO_GPU,
        extras="clip",
    )


RINE = _rine("rine", "4class", 2, 1024, "ProGAN + LSUN, 4 classes (car, cat, chair, horse)", seen=False)
RINE_LDM = _rine(
    "rine-ldm", "ldm", 4, 1024, "latent-diffusion images and reals (grip-unina's LDM training set)", seen=False
)

ENTRIES = (UNIVFD, NPR, CNNDETECTION, CNNDETECTION_01, COMMFOR, COMMFOR_224, CODE, RINE, RINE_LDM)

# Left out (the README's zoo section says why): DNF, B-Free, FatFormer, SPAI, AIDE.
