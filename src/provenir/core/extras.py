"""Optional dependencies: which extra installs a module, and one actionable line when it is missing.

``pip install provenir`` alone lists, verifies, compares and audits runs; training, evaluation,
scanning, reports and the REST API come with extras (``pip install 'provenir[train,eval]'``).
A command checks the extras it needs before it starts any work, so a missing package is one
line naming the extra, never a traceback after minutes of generation::

    from provenir.core.extras import check_extras, require_extra

    check_extras("train", "eval")                      # imports nothing; raises MissingExtraError
    special = require_extra("scipy.special", "eval")   # imports and returns the module
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from provenir.core.errors import MissingExtraError

#: The libraries a training run is built on: the ``train`` extra installs them and every
#: manifest records their versions (:data:`provenir.core.environment.TRACKED_PACKAGES`).
TRAINING_STACK = ("torch", "transformers", "trl", "peft", "accelerate", "datasets")

#: The modules Provenir imports from each extra of pyproject.toml (tests/test_packaging.py checks
#: both directions). A module listed under several extras is explained with the first one.
EXTRAS: dict[str, tuple[str, ...]] = {
    "signing": ("cryptography", "model_signing", "OpenSSL"),
    "eval": ("numpy", "scipy", "statsmodels", "sacrebleu", "rouge_score", "nltk", "lm_eval"),
    "governance": ("detect_secrets", "phonenumbers", "huggingface_hub", "cryptography"),
    "report": ("matplotlib",),
    "dedup": ("datasketch", "numpy"),
    "api": ("fastapi", "starlette", "uvicorn", "httpx"),
    "judges": ("anthropic", "openai", "httpx"),
    "tracking": ("wandb", "mlflow", "tensorboard"),
    "ray": ("ray",),
    "train": (
        *TRAINING_STACK,
        "tokenizers",
        "safetensors",
        "huggingface_hub",
        "numpy",
    ),
}


def extra_for(module: str) -> str | None:
    """The extra that installs ``module`` (a dotted name; its top-level package decides), or None."""
    top = module.split(".")[0]
    return next((extra for extra, modules in EXTRAS.items() if top in modules), None)


def install_hint(*extras: str) -> str:
    """``pip install 'provenir[a,b]'``."""
    return f"pip install 'provenir[{','.join(extras)}]'"


def require_extra(module: str, extra: str, *, purpose: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``extra``.

    ``purpose`` says what needs it ("manifest signing"), for the message. A module that is present
    but lacks one of its own dependencies is reported under the same extra: reinstalling fixes both.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or module
        if missing.split(".")[0] == "provenir":
            raise  # a bug in Provenir, not an installation gap
        needs = f"{purpose} needs {missing}" if purpose else f"{missing} is needed"
        raise MissingExtraError(
            f"{needs}, which is not installed: {install_hint(extra)}", module=missing, extra=extra
        ) from None


def check_extras(*extras: str) -> None:
    """Raise :class:`MissingExtraError` unless every module of every ``extras`` is installed.

    Looks the modules up without importing them, so a command can call it first at no cost.
    """
    unknown = [e for e in extras if e not in EXTRAS]
    if unknown:
        raise ValueError(f"unknown extras {unknown}; known: {', '.join(EXTRAS)}")
    missing: dict[str, list[str]] = {}
    for extra in extras:
        for module in EXTRAS[extra]:
            if importlib.util.find_spec(module) is None:
                missing.setdefault(extra, []).append(module)
    if missing:
        modules = sorted({m for ms in missing.values() for m in ms})
        shown = ", ".join(modules[:3]) + (f" and {len(modules) - 3} more" if len(modules) > 3 else "")
        names = " and ".join(repr(e) for e in missing)
        raise MissingExtraError(
            f"this needs the {names} extra{'s' if len(missing) > 1 else ''} ({shown} not installed): "
            f"{install_hint(*missing)}",
            module=modules[0],
            extra=next(iter(missing)),
        )


def missing_extra_error(exc: ModuleNotFoundError) -> MissingExtraError | None:
    """The one-line error for an import that failed anyway, or None when no extra provides the module."""
    if not exc.name:
        return None
    extra = extra_for(exc.name)
    if extra is None:
        return None
    return MissingExtraError(
        f"{exc.name} is not installed: {install_hint(extra)}", module=exc.name, extra=extra
    )
