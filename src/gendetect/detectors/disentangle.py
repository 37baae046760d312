"""COCOFake-style contrastive disentangling: separate what the caption explains from the low-level cues.

Input rows are ``[image embedding | caption embedding]`` (the ``openclip`` extractor with ``with_text=True`` makes
them; images without a caption have a zero caption half). A small head maps the image embedding to two parts:

* a **semantic** part ``s = W_s x``, pulled towards the caption embedding of the same pair by a contrastive
  (InfoNCE) loss over the batch, and kept free of the label (its covariance with real/fake is penalised);
* a **residual** part ``r = W_r x``, trained to separate real from fake with a logistic loss, and pushed to carry
  no caption information by penalising its cross-covariance with the caption embedding.

The detector decides on the residual part only, from the image alone: captions are needed to train, never to
scan. :meth:`DisentangleDetector.parts` returns both parts so reports can show where the detection signal lies.
Training uses torch (the ``clip`` extra); inference is numpy.
"""

from __future__ import annotations

import numpy as np

from gendetect.detectors.base import DETECTORS, Detector, _Standardizer


@DETECTORS.register("disentangle")
class DisentangleDetector(Detector):
    """Contrastive semantic / residual split of CLIP image embeddings; the residual part detects.

    Args:
        semantic_dim: size of the semantic part.
        residual_dim: size of the residual part.
        temperature: InfoNCE temperature.
        decorrelation: weight of the penalties that keep the parts apart: the residual part's cross-covariance with
            the caption embedding, and the semantic part's covariance with the label.
        contrastive: weight of the InfoNCE loss.
        epochs: passes over the training set.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        batch_size: rows per step (InfoNCE negatives come from the batch).
        random_state: seed.
    """

    name = "disentangle"
    _state_arrays = ("mean_", "scale_", "W_s_", "W_r_", "P_t_", "w_", "b_")

    def __init__(
        self,
        semantic_dim: int = 64,
        residual_dim: int = 32,
        temperature: float = 0.1,
        decorrelation: float = 10.0,
        contrastive: float = 1.0,
        epochs: int = 200,
        lr: float = 1e-2,
        weight_decay: float = 1e-4,
        batch_size: int = 128,
        random_state: int = 0,
    ) -> None:
        self.semantic_dim = semantic_dim
        self.residual_dim = residual_dim
        self.temperature = temperature
        self.decorrelation = decorrelation
        self.contrastive = contrastive
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.random_state = random_state

    @staticmethod
    def _split(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if X.shape[1] % 2:
            raise ValueError(
                f"disentangle expects [image | caption] rows of even width (openclip with_text=true); got {X.shape[1]}"
            )
        d = X.shape[1] // 2
        return X[:, :d], X[:, d:]

    def _fit(self, X: np.ndarray, target: np.ndarray) -> None:
        from gendetect.errors import require

        torch = require("torch", "clip", "training the disentangle detector")
        img, txt = self._split(X)
        self.mean_, self.scale_ = _Standardizer.fit(img)
        has_text = np.linalg.norm(txt, axis=1) > 0
        gen = torch.Generator().manual_seed(self.random_state)
        xi = torch.tensor((img - self.mean_) / self.scale_, dtype=torch.float32)
        xt = torch.nn.functional.normalize(torch.tensor(txt, dtype=torch.float32), dim=-1)
        y = torch.tensor(target, dtype=torch.float32)
        mask = torch.tensor(has_text)
        d, dt = xi.shape[1], xt.shape[1]

        def init(rows: int, cols: int) -> torch.Tensor:
            return (torch.randn(rows, cols, generator=gen) / np.sqrt(cols)).requires_grad_()

        W_s, W_r = init(self.semantic_dim, d), init(self.residual_dim, d)
        P_t = init(self.semantic_dim, dt)  # caption projection into the semantic space (kept for retrieval checks)
        w = torch.zeros(self.residual_dim, requires_grad=True)
        b = torch.zeros(1, requires_grad=True)
        opt = torch.optim.Adam([W_s, W_r, P_t, w, b], lr=self.lr, weight_decay=self.weight_decay)
        n = len(xi)
        pos = float(target.mean())
        pos_weight = torch.tensor((1 - pos) / max(pos, 1e-6))
        for _ in range(self.epochs):
            order = torch.randperm(n, generator=gen)
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                s, r = xi[idx] @ W_s.T, xi[idx] @ W_r.T
                loss = torch.nn.functional.binary_cross_entropy_with_logits(r @ w + b, y[idx], pos_weight=pos_weight)
                sc, yc = s - s.mean(0), y[idx] - y[idx].mean()
                loss = loss + self.decorrelation * ((sc.T @ yc) / max(len(idx) - 1, 1)).pow(2).sum()
                m = mask[idx]
                if int(m.sum()) > 1:
                    zs = torch.nn.functional.normalize(s[m], dim=-1)
                    zt = torch.nn.functional.normalize(xt[idx][m] @ P_t.T, dim=-1)
                    logits = zs @ zt.T / self.temperature
                    labels = torch.arange(len(zs))
                    nce = 0.5 * (
                        torch.nn.functional.cross_entropy(logits, labels)
                        + torch.nn.functional.cross_entropy(logits.T, labels)
                    )
                    rc = r[m] - r[m].mean(0)
                    tc = xt[idx][m] - xt[idx][m].mean(0)
                    cross = (rc.T @ tc) / max(int(m.sum()) - 1, 1)
                    loss = loss + self.contrastive * nce + self.decorrelation * cross.pow(2).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
        self.W_s_ = W_s.detach().double().numpy()
        self.W_r_ = W_r.detach().double().numpy()
        self.P_t_ = P_t.detach().double().numpy()
        self.w_ = w.detach().double().numpy()
        self.b_ = b.detach().double().numpy()

    def parts(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(semantic (N, semantic_dim), residual (N, residual_dim))`` of rows ``[image | caption]``."""
        self._check_fitted()
        img, _ = self._split(np.asarray(X, dtype=np.float64))
        z = (img - self.mean_) / self.scale_
        return z @ self.W_s_.T, z @ self.W_r_.T

    def retrieval_accuracy(self, X: np.ndarray) -> float:
        """Top-1 accuracy of finding each row's own caption from its semantic part, among the rows' captions.

        The sanity check of the semantic part: high means it encodes what the caption says. Rows without a
        caption are skipped.
        """
        s, _ = self.parts(X)
        _, txt = self._split(np.asarray(X, dtype=np.float64))
        keep = np.linalg.norm(txt, axis=1) > 0
        if keep.sum() < 2:
            return float("nan")
        zs = s[keep] / np.linalg.norm(s[keep], axis=1, keepdims=True)
        t = txt[keep] / np.linalg.norm(txt[keep], axis=1, keepdims=True)
        zt = t @ self.P_t_.T
        zt /= np.linalg.norm(zt, axis=1, keepdims=True)
        return float(np.mean(np.argmax(zs @ zt.T, axis=1) == np.arange(keep.sum())))

    def _decision(self, X: np.ndarray) -> np.ndarray:
        _, r = self.parts(X)
        return r @ self.w_ + self.b_[0]
