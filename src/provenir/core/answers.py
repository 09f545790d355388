"""The one answer normalisation every exact-match comparison uses (metrics and rewards alike).

It lives in ``core`` so that rewards, which may depend on ``core`` only, and the evaluation
metrics share a single definition: a reward that says "correct" and a metric that says "wrong"
for the same answer would make RLAIF optimise something other than what is measured.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache

__all__ = ["normalize_answer"]

# str.translate deletes exactly the characters the official `ch not in set(string.punctuation)`
# filter drops, at C speed.
_DROP_PUNCT = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


@lru_cache(maxsize=1 << 16)
def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lowercase, drop ASCII punctuation, drop a/an/the, collapse spaces.

    The steps run in the official script's order (lower, punctuation, articles, white space),
    so ``normalize_answer("The  Eiffel-Tower!") == "eiffeltower"``.
    """
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_DROP_PUNCT)).split())
