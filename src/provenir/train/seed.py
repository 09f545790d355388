"""Seeding: one function that names every RNG a training run touches.

Same seed + same config + same data + same machine => bitwise-identical weights. Across CPU
instruction sets (AVX2 vs AVX-512) float reductions may differ, so hashes are only compared
between runs on one machine.
"""

from __future__ import annotations

import os
import random


def set_seed(seed: int, *, deterministic: bool = True) -> None:
    """Seed python, numpy and torch (CPU and CUDA), and make torch's kernels deterministic."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        # cuBLAS needs a fixed workspace to be deterministic; harmless on CPU.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        if torch.backends.cudnn.is_available():
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
