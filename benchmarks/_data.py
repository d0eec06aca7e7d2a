"""Benchmark inputs in each loss's domain (shared by the benchmark scripts)."""
import numpy as np


def elementwise_data(rng, shape, pred_kind, label_kind, dtype=np.float32):
    """pred and label of ``shape`` and ``dtype`` for an elementwise loss.

    pred_kind: 'real' (standard normal) or 'prob' (uniform in (0.05, 0.95));
    label_kind: 'real', 'signed' ({-1, 1}), 'binary' ({0, 1}) or 'prob'
    (uniform in [0, 1]).
    """
    pred = rng.uniform(0.05, 0.95, shape) if pred_kind == "prob" else rng.standard_normal(shape)
    label = {"real": lambda: rng.standard_normal(shape),
             "signed": lambda: rng.choice([-1.0, 1.0], shape),
             "binary": lambda: rng.choice([0.0, 1.0], shape),
             "prob": lambda: rng.uniform(0, 1, shape)}[label_kind]()
    return pred.astype(dtype), label.astype(dtype)
