"""One registry for everything users plug in: backends, metrics, judges, rewards.

Register with a decorator; the kind is inferred from the protocol method the object has
(``fit`` -> backend, ``score_pairwise`` -> judge, ``score`` -> reward, ``compute`` -> metric)
or given explicitly::

    from provenir.plugins.registry import PluginRegistry

    @PluginRegistry.register("my-backend")
    class MyBackend:
        def fit(self, config, dataset): ...

Third-party packages expose plugins through the ``provenir.plugins`` entry-point group:
``my-backend = "my_pkg.backend:MyBackend"``. Built-ins and entry points load on first lookup,
so importing Provenir stays cheap.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, ClassVar, Literal, TypeVar

from provenir.core.errors import PluginError
from provenir.core.extras import extra_for, install_hint

Kind = Literal["backend", "metric", "judge", "reward"]
KINDS: tuple[Kind, ...] = ("backend", "metric", "judge", "reward")
ENTRY_POINT_GROUP = "provenir.plugins"

# The order matters: a judge may also have `score`, a reward may also have `compute`.
_KIND_BY_METHOD: tuple[tuple[str, Kind], ...] = (
    ("fit", "backend"),
    ("score_pairwise", "judge"),
    ("score", "reward"),
    ("compute", "metric"),
)

# Modules whose import registers Provenir's own plugins of each kind.
_BUILTIN_MODULES: dict[Kind, tuple[str, ...]] = {
    "backend": ("provenir.train.backends.stub", "provenir.train.backends.trl_backend"),
    "metric": ("provenir.eval.metrics",),
    "judge": ("provenir.eval.judge",),
    "reward": ("provenir.rewards.primitives",),
}

T = TypeVar("T")


def infer_kind(obj: Any) -> Kind:
    """The plugin kind of ``obj``, from the protocol method it defines."""
    for method, kind in _KIND_BY_METHOD:
        if callable(getattr(obj, method, None)):
            return kind
    raise PluginError(
        f"{getattr(obj, '__name__', obj)!r} implements no plugin protocol "
        "(needs one of: fit, score_pairwise, score, compute); pass kind= explicitly"
    )


class PluginRegistry:
    """Class-level registry; every method is a classmethod so there is one global namespace."""

    _entries: ClassVar[dict[Kind, dict[str, Any]]] = {k: {} for k in KINDS}
    _loaded: ClassVar[set[Kind]] = set()
    _lock: ClassVar[threading.RLock] = threading.RLock()

    @classmethod
    def register(cls, name: str, kind: Kind | None = None, *, replace: bool = False) -> Callable[[T], T]:
        """Decorator registering a class or factory under ``name``."""

        def decorator(obj: T) -> T:
            cls.add(name, obj, kind=kind, replace=replace)
            return obj

        return decorator

    @classmethod
    def add(cls, name: str, obj: Any, *, kind: Kind | None = None, replace: bool = False) -> None:
        """Register ``obj`` under ``name`` (non-decorator form)."""
        if not name or not isinstance(name, str):
            raise PluginError("plugin name must be a non-empty string")
        resolved = kind or infer_kind(obj)
        if resolved not in KINDS:
            raise PluginError(f"unknown plugin kind {resolved!r}; expected one of {', '.join(KINDS)}")
        with cls._lock:
            table = cls._entries[resolved]
            if name in table and table[name] is not obj and not replace:
                raise PluginError(f"{resolved} {name!r} is already registered")
            table[name] = obj

    @classmethod
    def get(cls, kind: Kind, name: str) -> Any:
        """The registered class or factory; a clear error lists the known names."""
        cls._ensure_loaded(kind)
        try:
            return cls._entries[kind][name]
        except KeyError:
            known = ", ".join(sorted(cls._entries[kind])) or "none"
            raise PluginError(f"unknown {kind} {name!r}; registered: {known}") from None

    @classmethod
    def create(cls, kind: Kind, name: str, **kwargs: Any) -> Any:
        """Instantiate the plugin registered under ``name``."""
        return cls.get(kind, name)(**kwargs)

    @classmethod
    def list_names(cls, kind: Kind) -> list[str]:
        """Sorted names registered for ``kind``."""
        cls._ensure_loaded(kind)
        return sorted(cls._entries[kind])

    @classmethod
    def unregister(cls, kind: Kind, name: str) -> None:
        """Remove a registration (tests, interactive sessions)."""
        with cls._lock:
            cls._entries[kind].pop(name, None)

    @classmethod
    def _ensure_loaded(cls, kind: Kind) -> None:
        if kind not in KINDS:
            raise PluginError(f"unknown plugin kind {kind!r}; expected one of {', '.join(KINDS)}")
        with cls._lock:
            if kind in cls._loaded:
                return
            cls._loaded.add(kind)
            for module in _BUILTIN_MODULES[kind]:
                try:
                    importlib.import_module(module)
                except ModuleNotFoundError as exc:
                    if exc.name and module.startswith(exc.name):
                        continue  # that built-in module is not part of this installation
                    extra = extra_for(exc.name or "") or "all"
                    raise PluginError(
                        f"built-in {kind} plugins need {exc.name!r}, which is not installed: "
                        f"{install_hint(extra)}"
                    ) from exc
            cls._load_entry_points()

    @classmethod
    def _load_entry_points(cls) -> None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                obj = ep.load()
            except Exception as exc:  # a broken third-party plugin must not break Provenir
                raise PluginError(
                    f"plugin entry point {ep.name!r} ({ep.value}) failed to load: {exc}"
                ) from exc
            # Loading may already have registered it through the decorator.
            if not any(obj is v for table in cls._entries.values() for v in table.values()):
                cls.add(ep.name, obj)
