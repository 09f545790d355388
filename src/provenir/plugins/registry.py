"""One registry for everything users plug in: backends, metrics, judges, rewards and templates.

Register with a decorator; the kind is inferred from the protocol method the object has
(``fit`` -> backend, ``score_pairwise`` -> judge, ``score`` -> reward, ``compute`` -> metric,
``render`` -> template) or given explicitly::

    from provenir.plugins.registry import PluginRegistry

    @PluginRegistry.register("my-backend")
    class MyBackend:
        def fit(self, config, dataset): ...

Packages, Provenir itself included, declare plugins as entry points, read from the installed
distributions' metadata on a registry's first lookup of a kind (so importing Provenir stays cheap):

- one group per kind, ``provenir.backends``, ``provenir.metrics``, ``provenir.judges``,
  ``provenir.rewards``, ``provenir.templates``: ``name = "pkg.module:object"`` registers the object
  under ``name`` as that kind;
- ``provenir.plugins``: ``name = "pkg.module:object"`` with the kind inferred from the object.

Class-level calls (``PluginRegistry.get(...)``) act on the current default registry; a
``PluginRegistry()`` instance is a registry of its own, and :meth:`PluginRegistry.isolated`
makes a fresh one the default for a ``with`` block (tests), so registrations made inside it
vanish with it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Concatenate, Generic, Literal, ParamSpec, TypeVar, cast

from provenir.core.errors import PluginError
from provenir.core.extras import extra_for, install_hint

Kind = Literal["backend", "metric", "judge", "reward", "template"]
KINDS: tuple[Kind, ...] = ("backend", "metric", "judge", "reward", "template")

#: The group whose entry points name plugin objects of any kind (the kind is inferred).
ENTRY_POINT_GROUP = "provenir.plugins"
#: The group of each kind: its entry points name objects of that kind.
KIND_GROUPS: dict[Kind, str] = {kind: f"provenir.{kind}s" for kind in KINDS}
#: The distribution whose entry points declare the built-in plugins.
BUILTIN_DISTRIBUTION = "provenir"

# The order matters: a judge may also have `score`, a reward may also have `compute`.
_KIND_BY_METHOD: tuple[tuple[str, Kind], ...] = (
    ("fit", "backend"),
    ("score_pairwise", "judge"),
    ("score", "reward"),
    ("compute", "metric"),
    ("render", "template"),
)

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")


def infer_kind(obj: Any) -> Kind:
    """The plugin kind of ``obj``, from the protocol method it defines."""
    for method, kind in _KIND_BY_METHOD:
        if callable(getattr(obj, method, None)):
            return kind
    raise PluginError(
        f"{getattr(obj, '__name__', obj)!r} implements no plugin protocol "
        "(needs one of: fit, score_pairwise, score, compute, render); pass kind= explicitly"
    )


class _OnDefault(Generic[P, R]):
    """A method that acts on the instance it is called on, or, called on the class, on the default registry.

    This keeps the documented class-level calls (``@PluginRegistry.register("x")``) working while
    every registry is an ordinary instance.
    """

    def __init__(self, func: Callable[Concatenate[PluginRegistry, P], R]) -> None:
        self.func = func
        self.__doc__ = func.__doc__

    def __get__(self, obj: PluginRegistry | None, owner: type | None = None) -> Callable[P, R]:
        target = obj if obj is not None else default_registry()
        return cast(Callable[P, R], functools.partial(self.func, target))


class PluginRegistry:
    """Named plugins of each kind; built-ins and third-party plugins arrive through entry points."""

    def __init__(self) -> None:
        self._entries: dict[Kind, dict[str, Any]] = {k: {} for k in KINDS}
        self._loaded: set[Kind] = set()
        self._lock = threading.RLock()

    @_OnDefault
    def register(self, name: str, kind: Kind | None = None, *, replace: bool = False) -> Callable[[T], T]:
        """Decorator registering a class or factory under ``name``."""

        def decorator(obj: T) -> T:
            self.add(name, obj, kind=kind, replace=replace)
            return obj

        return decorator

    @_OnDefault
    def add(self, name: str, obj: Any, *, kind: Kind | None = None, replace: bool = False) -> None:
        """Register ``obj`` under ``name`` (non-decorator form)."""
        if not name or not isinstance(name, str):
            raise PluginError("plugin name must be a non-empty string")
        resolved = kind or infer_kind(obj)
        _check_kind(resolved)
        with self._lock:
            table = self._entries[resolved]
            if name in table and table[name] is not obj and not replace:
                raise PluginError(
                    f"{resolved} {name!r} is already registered (pass replace=True to override)"
                )
            table[name] = obj

    @_OnDefault
    def find(self, kind: Kind, name: str) -> Any | None:
        """The registered class, factory or object, or ``None`` when nothing has that name."""
        self._ensure_loaded(kind)
        return self._entries[kind].get(name)

    @_OnDefault
    def get(self, kind: Kind, name: str) -> Any:
        """The registered class or factory; a clear error lists the known names."""
        found = self.find(kind, name)
        if found is None:
            known = ", ".join(sorted(self._entries[kind])) or "none"
            raise PluginError(f"unknown {kind} {name!r}; registered: {known}")
        return found

    @_OnDefault
    def create(self, kind: Kind, name: str, **kwargs: Any) -> Any:
        """Instantiate the plugin registered under ``name``."""
        return self.get(kind, name)(**kwargs)

    @_OnDefault
    def list_names(self, kind: Kind) -> list[str]:
        """Sorted names registered for ``kind``."""
        self._ensure_loaded(kind)
        return sorted(self._entries[kind])

    @_OnDefault
    def unregister(self, kind: Kind, name: str) -> None:
        """Remove a registration (tests, interactive sessions)."""
        _check_kind(kind)
        with self._lock:
            self._entries[kind].pop(name, None)

    @staticmethod
    def default() -> PluginRegistry:
        """The registry that class-level calls use (see :meth:`isolated`)."""
        return default_registry()

    @staticmethod
    @contextmanager
    def isolated(registry: PluginRegistry | None = None) -> Iterator[PluginRegistry]:
        """Make ``registry`` (a fresh one by default) the default for the ``with`` block.

        Inside, class-level calls see the installed plugins plus whatever the block registers;
        after it, the previous default is back, untouched.
        """
        scoped = registry if registry is not None else PluginRegistry()
        with _default_lock:
            _default_stack.append(scoped)
        try:
            yield scoped
        finally:
            with _default_lock:
                # The innermost entry for it: the same registry may be made the default twice.
                del _default_stack[len(_default_stack) - 1 - _default_stack[::-1].index(scoped)]

    # -- loading ---------------------------------------------------------------------------------

    def _ensure_loaded(self, kind: Kind) -> None:
        _check_kind(kind)
        with self._lock:
            if kind in self._loaded:
                return
            self._loaded.add(kind)
            try:
                declared = entry_points()
                group = list(declared.select(group=KIND_GROUPS[kind]))
                _require_builtins(kind, group)
                for ep in group:
                    self.add(ep.name, _load(ep, kind), kind=kind)
                for ep in declared.select(group=ENTRY_POINT_GROUP):
                    self._add_inferred(ep)
            except BaseException:
                self._loaded.discard(kind)  # the next lookup reports the same error, not an empty table
                raise

    def _add_inferred(self, ep: EntryPoint) -> None:
        obj = _load(ep, None)
        # A decorator in the loaded module may already have registered it (possibly by another name).
        if not any(obj is v for table in self._entries.values() for v in table.values()):
            self.add(ep.name, obj)


_default_lock = threading.Lock()
_default_stack: list[PluginRegistry] = [PluginRegistry()]


def default_registry() -> PluginRegistry:
    """The registry that ``PluginRegistry.<method>(...)`` class-level calls act on."""
    with _default_lock:
        return _default_stack[-1]


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise PluginError(f"unknown plugin kind {kind!r}; expected one of {', '.join(KINDS)}")


def _is_builtin(ep: EntryPoint) -> bool:
    dist = ep.dist
    return dist is not None and dist.name == BUILTIN_DISTRIBUTION


def _require_builtins(kind: Kind, group: list[EntryPoint]) -> None:
    """Provenir declares built-ins of every kind; none at all means metadata older than the code."""
    if not any(_is_builtin(ep) for ep in group):
        raise PluginError(
            f"Provenir's installed metadata declares no built-in {kind} plugins (entry point group "
            f"{KIND_GROUPS[kind]!r}): the install is older than this code; reinstall it "
            "(pip install -e . in the checkout)"
        )


def _load(ep: EntryPoint, kind: Kind | None) -> Any:
    what = f"{kind} plugin" if kind else "plugin"
    try:
        return ep.load()
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if _is_builtin(ep):
            if ep.module == missing or ep.module.startswith(missing + "."):
                raise PluginError(
                    f"built-in {what} {ep.name!r} names {ep.value!r}, which this code does not have: "
                    "the install is out of date; reinstall it (pip install -e . in the checkout)"
                ) from exc
            extra = extra_for(missing) or "all"
            raise PluginError(
                f"built-in {what} {ep.name!r} needs {missing!r}, which is not installed: {install_hint(extra)}"
            ) from exc
        raise PluginError(f"{what} entry point {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
    except Exception as exc:  # a broken third-party plugin is reported, not half-registered
        raise PluginError(f"{what} entry point {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
