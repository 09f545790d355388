"""The statistics of judge calibration: Cohen's kappa, a Wilson interval, length bias, LC win rate.

Each function is small and checked against a reference in the tests: the kappas against
scikit-learn's ``cohen_kappa_score``, the logistic fits against statsmodels' binomial GLM.

Verdict labels are ordered ``b < tie < a`` (:data:`ORDERED_LABELS`), so the linearly weighted
kappa counts a tie-versus-side disagreement as half as bad as picking the opposite side.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

#: Verdict labels from worst to best for response ``a``: the ordinal scale of the weighted kappa.
ORDERED_LABELS: tuple[str, str, str] = ("b", "tie", "a")

#: The value of a verdict as "``a`` wins": a tie counts half a win, as in AlpacaEval.
WIN_VALUE: dict[str, float] = {"a": 1.0, "tie": 0.5, "b": 0.0}

__all__ = [
    "ORDERED_LABELS",
    "WIN_VALUE",
    "LengthBias",
    "cohen_kappa",
    "length_bias",
    "length_controlled_win_rate",
]


def cohen_kappa(
    rater1: Sequence[str],
    rater2: Sequence[str],
    *,
    weights: Literal["linear", "quadratic"] | None = None,
    labels: Sequence[str] = ORDERED_LABELS,
) -> float:
    """Cohen's kappa of two raters over ``labels`` (in their order), optionally weighted.

    ``kappa = 1 - sum(W * observed) / sum(W * expected)`` where ``expected`` is the outer
    product of the two raters' marginals and ``W`` the disagreement weights: ``1 - I``
    (unweighted), ``|i - j|`` (linear) or ``(i - j)**2`` (quadratic). Returns NaN when chance
    agreement is already perfect (both raters used one and the same label), as scikit-learn does.

    Example::

        cohen_kappa(["a", "b", "tie"], ["a", "b", "a"], weights="linear")
    """
    if len(rater1) != len(rater2):
        raise ValueError(f"raters labelled {len(rater1)} and {len(rater2)} items; they must match")
    if not rater1:
        raise ValueError("kappa needs at least one item")
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({x for x in (*rater1, *rater2) if x not in index})
    if unknown:
        raise ValueError(f"labels {unknown} are not in {list(labels)}")
    k = len(labels)
    observed = np.zeros((k, k))
    for x, y in zip(rater1, rater2, strict=True):
        observed[index[x], index[y]] += 1
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    distance = np.abs(np.subtract.outer(np.arange(k), np.arange(k))).astype(float)
    if weights is None:
        w = (distance > 0).astype(float)
    elif weights == "linear":
        w = distance
    elif weights == "quadratic":
        w = distance**2
    else:
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    chance_disagreement = float((w * expected).sum())
    if chance_disagreement == 0.0:
        return math.nan
    return 1.0 - float((w * observed).sum()) / chance_disagreement


@dataclass(frozen=True)
class LengthBias:
    """A logistic regression of "the judge prefers ``a``" on the length difference ``len(a) - len(b)``.

    Attributes:
        slope: log-odds of preferring ``a`` per unit of length difference (``None`` if the fit
            failed; see ``note``). Positive: the judge favours the longer response.
        se, p_value: the slope's standard error and two-sided Wald p-value.
        intercept: log-odds of preferring ``a`` at equal length.
        n: items in the fit.
        note: why the fit has no numbers (constant verdict, constant lengths, perfect separation).
    """

    slope: float | None
    se: float | None
    p_value: float | None
    intercept: float | None
    n: int
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _fit_logit(y: np.ndarray, x: np.ndarray) -> tuple[Any, str | None]:
    """statsmodels ``Logit(y ~ 1 + x)``; ``(None, reason)`` where the model is not identified."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    if len(y) < 3:
        return None, f"{len(y)} items: too few to fit"
    if np.all(y == y[0]):
        return None, "the verdict is the same on every item"
    if np.all(x == x[0]):
        return None, "every pair has the same length difference"
    with warnings.catch_warnings():
        # Separation and non-convergence give huge, meaningless coefficients: say so instead.
        warnings.simplefilter("error", PerfectSeparationWarning)
        warnings.simplefilter("error", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            fit = sm.Logit(y, sm.add_constant(x, has_constant="add")).fit(disp=0, maxiter=200)
        except (PerfectSeparationWarning, np.linalg.LinAlgError):
            return None, "perfect separation: the verdict is a deterministic function of length"
        except ConvergenceWarning:
            return None, "the logistic fit did not converge (near-perfect separation)"
    if not np.all(np.isfinite(fit.bse)):
        return None, "the logistic fit has no finite standard errors"
    return fit, None


def length_bias(verdicts: Sequence[str], length_diff: Sequence[float]) -> LengthBias:
    """Fit ``logit P(judge prefers a) = intercept + slope * length_diff`` (statsmodels ``Logit``).

    ``verdicts`` are ``'a' | 'b' | 'tie'``; a tie counts as half a win (:data:`WIN_VALUE`), which
    makes this a fractional logit: the slope is the quasi-maximum-likelihood estimate and the
    standard error the usual one (exact when there are no ties).
    """
    y = np.array([WIN_VALUE[v] for v in verdicts], dtype=float)
    x = np.asarray(length_diff, dtype=float)
    fit, note = _fit_logit(y, x)
    if fit is None:
        return LengthBias(None, None, None, None, len(y), note)
    return LengthBias(
        slope=float(fit.params[1]),
        se=float(fit.bse[1]),
        p_value=float(fit.pvalues[1]),
        intercept=float(fit.params[0]),
        n=len(y),
    )


def length_controlled_win_rate(verdicts: Sequence[str], length_diff: Sequence[float]) -> float | None:
    """AlpacaEval's length-controlled win rate of ``a``: the win rate with length's effect removed.

    Fits ``logit P(a wins) = b0 + b1 * tanh(d / std(d))`` (``d = len(a) - len(b)``, the tanh keeps
    a few very long answers from dominating), then predicts every item with the length term set
    to zero and averages. ``None`` when the model cannot be fitted (see :func:`length_bias`).
    """
    y = np.array([WIN_VALUE[v] for v in verdicts], dtype=float)
    d = np.asarray(length_diff, dtype=float)
    std = float(np.std(d))
    x = np.tanh(d / std) if std > 0 else np.zeros_like(d)
    fit, _ = _fit_logit(y, x)
    if fit is None:
        return None
    no_length = np.column_stack([np.ones_like(d), np.zeros_like(d)])
    return float(np.mean(fit.predict(no_length)))
