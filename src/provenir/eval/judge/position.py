"""Position-bias control: judge a pair in both orders and reconcile the two verdicts.

LLM judges favour the response shown first (or second) measurably often. Asking twice with the
responses swapped and comparing exposes it:

* both orders agree -> that verdict, confidence = mean of the two, ``agreed=True``;
* one order says tie, the other picks a side -> that side, confidence halved, ``agreed=False``;
* the orders pick opposite sides -> ``'tie'`` with confidence 0.0, ``agreed=False``: the judge's
  choice followed the position, not the content, so it carries no preference.

The share of ``agreed=True`` verdicts is the judge's agreement rate
(:func:`provenir.eval.judge.agreement_rate`, or ``judge.stats.agreement_rate``).
"""

from __future__ import annotations

from provenir.eval.judge.verdict import Preference


def combine_orders(forward: Preference, backward: Preference) -> Preference:
    """Reconcile ``forward`` (a shown first) with ``backward`` (b shown first, already relabelled
    so that ``'a'`` still means the caller's ``a``)."""
    if forward.preferred == backward.preferred:
        return Preference(
            forward.preferred, (forward.confidence + backward.confidence) / 2, forward.rationale, agreed=True
        )
    if "tie" in (forward.preferred, backward.preferred):
        decided = backward if forward.preferred == "tie" else forward
        return Preference(
            decided.preferred,
            (forward.confidence + backward.confidence) / 4,
            f"Only one presentation order decided: {decided.rationale}",
            agreed=False,
        )
    return Preference(
        "tie",
        0.0,
        f"Position bias: the verdict followed the presentation order ({forward.rationale} / "
        f"{backward.rationale})",
        agreed=False,
    )
