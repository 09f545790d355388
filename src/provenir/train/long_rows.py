"""Rows longer than ``max_length`` tokens: found before tokenization, cut short, counted.

TRL 1.16 tokenizes every row whole and only then cuts it to ``max_length`` tokens, so one
10 MB row costs gigabytes of token lists (and transformers warns about "indexing errors").
Here a row is measured by tokenizing a bounded prefix: a text whose UTF-8 length (plus a
margin) is within the limit cannot exceed it, since a tokenizer makes at most one token per
byte (byte-level BPE, SentencePiece with byte fallback) besides a few special tokens; a longer
text is tokenized on growing prefixes until one has more tokens than the limit. That prefix
is what training receives, so memory stays bounded whatever the row's size, and the tokens
TRL keeps are the ones it would have kept from the whole row.

What TRL 1.16 does with a row longer than ``max_length`` (``truncation_mode="keep_start"``):

* SFT and DPO keep the first ``max_length`` tokens of prompt + answer ("truncated"), and
  drop a row whose prompt alone fills ``max_length``, since no answer token would remain to
  learn from (SFTTrainer "Dropping fully masked examples", DPOTrainer "Dropping fully
  truncated examples"). Provenir drops those rows itself, before TRL, so the count is exact.
* GRPO does not truncate prompts at all: it would generate from the whole prompt. Provenir
  drops GRPO prompts longer than ``max_length`` tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

#: Tokens of slack for special tokens, a prefix space and merges across the cut of a prefix.
MARGIN = 16
#: How many long training rows are named by position in the manifest.
NAMED_ROWS = 20

Fate = Literal["fits", "truncated", "dropped"]


def _count(tokenizer: Any, text: str) -> int:
    # Special tokens as TRL tokenizes (add_special_tokens defaults to True).
    return len(tokenizer(text)["input_ids"])


def clip_text(tokenizer: Any, text: str, limit: int) -> tuple[str, bool]:
    """``(text, False)`` when ``text`` has at most ``limit`` tokens, else ``(prefix, True)``.

    ``prefix`` is a prefix of ``text`` with more than ``limit + MARGIN`` tokens, found by
    tokenizing at most a few times the characters that ``limit`` tokens need.
    """
    if len(text) + MARGIN <= limit and len(text.encode("utf-8")) + MARGIN <= limit:
        return text, False
    chars = max(4 * limit, 256)
    while True:
        prefix = text[:chars]
        n = _count(tokenizer, prefix)
        if n > limit + MARGIN:
            return prefix, True
        if chars >= len(text):
            return text, n > limit
        chars *= 4


def longer_than(tokenizer: Any, text: str, limit: int) -> bool:
    """Whether ``text`` has more than ``limit`` tokens, tokenizing a bounded prefix only."""
    return clip_text(tokenizer, text, limit)[1]


def fit_completions(
    tokenizer: Any, prompt: str, completions: Sequence[str], max_length: int
) -> tuple[Fate, list[str]]:
    """What keep-start truncation does to ``prompt`` + each completion, and the completions to train on.

    ``dropped`` when the prompt alone has ``max_length`` tokens or more; ``truncated`` when
    some prompt + completion is longer than ``max_length`` (that completion is cut to a prefix
    still longer than the limit, so the first ``max_length`` tokens are unchanged); else ``fits``.
    """
    if longer_than(tokenizer, prompt, max_length - 1):
        return "dropped", list(completions)
    fate: Fate = "fits"
    kept: list[str] = []
    for completion in completions:
        clipped, long = clip_text(tokenizer, prompt + completion, max_length)
        if long:
            fate = "truncated"
            completion = clipped[len(prompt) :]
        kept.append(completion)
    return fate, kept


@dataclass
class LongRowTally:
    """Counts of one split's rows by fate, and the 1-based positions of the long ones."""

    fits: int = 0
    truncated: int = 0
    dropped: int = 0
    positions: list[int] = field(default_factory=list)

    def add(self, position: int, fate: Fate) -> None:
        """Count row ``position`` (1-based) as ``fate``."""
        if fate == "fits":
            self.fits += 1
            return
        if fate == "truncated":
            self.truncated += 1
        else:
            self.dropped += 1
        if len(self.positions) < NAMED_ROWS:
            self.positions.append(position)

    @property
    def long(self) -> int:
        """Rows longer than the limit, whatever became of them."""
        return self.truncated + self.dropped
