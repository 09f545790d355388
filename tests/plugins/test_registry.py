from __future__ import annotations

import pytest

from provenir.core.abstractions import TrainingBackend
from provenir.core.errors import PluginError
from provenir.plugins.registry import PluginRegistry, infer_kind


def test_seed_snippet_registers_a_backend() -> None:
    @PluginRegistry.register("my-backend")
    class MyBackend(TrainingBackend):
        def fit(self, config, dataset): ...

    try:
        assert PluginRegistry.get("backend", "my-backend") is MyBackend
        assert "my-backend" in PluginRegistry.list_names("backend")
    finally:
        PluginRegistry.unregister("backend", "my-backend")


def test_builtins_and_errors() -> None:
    assert {"stub", "trl"} <= set(PluginRegistry.list_names("backend"))
    with pytest.raises(PluginError, match="unknown backend 'nope'; registered: .*stub"):
        PluginRegistry.get("backend", "nope")
    with pytest.raises(PluginError, match="implements no plugin protocol"):
        infer_kind(object())
    with pytest.raises(PluginError, match="unknown plugin kind"):
        PluginRegistry.list_names("widget")  # type: ignore[arg-type]


def test_duplicate_name_is_refused() -> None:
    class A:
        def score(self, prediction: str, reference: str) -> float:
            return 0.0

    class B(A):
        pass

    PluginRegistry.add("dup-reward", A)
    try:
        assert infer_kind(A) == "reward"
        with pytest.raises(PluginError, match="already registered"):
            PluginRegistry.add("dup-reward", B)
        PluginRegistry.add("dup-reward", B, replace=True)
        assert PluginRegistry.get("reward", "dup-reward") is B
    finally:
        PluginRegistry.unregister("reward", "dup-reward")


def test_entry_point_discovery(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    import provenir.plugins.registry as registry

    ep = EntryPoint(
        name="ep-backend", value="provenir.train.backends.stub:StubBackend", group="provenir.plugins"
    )
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep] if group == "provenir.plugins" else [])
    PluginRegistry._load_entry_points()
    # StubBackend was already registered as "stub", so discovery does not add a second name.
    assert "ep-backend" not in PluginRegistry.list_names("backend")

    class Fresh:
        def fit(self, config, dataset, run_dir): ...

    monkeypatch.setattr(EntryPoint, "load", lambda self: Fresh)
    PluginRegistry._load_entry_points()
    try:
        assert PluginRegistry.get("backend", "ep-backend") is Fresh
    finally:
        PluginRegistry.unregister("backend", "ep-backend")
