"""Training: :func:`train_pipeline` (features, out-of-fold threshold, refit) and the generic torch loop
(:mod:`gendetect.training.torch_loop`, a re-export of :mod:`gendetect.detectors.torch_loop`, where the torch
detectors import it from).

The helpers that used to live in ``gendetect/training.py`` moved down the pipeline: ``featurize`` and ``store_key``
to :mod:`gendetect.features.featurize`; ``labelled``, ``targets`` and ``data_summary`` to
:mod:`gendetect.data.summary`; ``generator_pairs``, ``per_generator_metrics`` and ``leave_one_source_out`` to
:mod:`gendetect.evaluation.grouping`.
"""

from gendetect.training.pipeline import out_of_fold_scores as out_of_fold_scores, train_pipeline as train_pipeline

__all__ = ["out_of_fold_scores", "train_pipeline"]
