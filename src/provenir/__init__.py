"""Provenir: the trust layer for LLM post-training.

Importing :mod:`provenir` is cheap: torch, transformers and the other heavy
libraries load lazily inside the training backends, never at import time.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
