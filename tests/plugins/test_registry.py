from __future__ import annotations

import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from provenir.core.abstractions import TrainingBackend
from provenir.core.errors import PluginError
from provenir.plugins.registry import KIND_GROUPS, KINDS, PluginRegistry, infer_kind

ROOT = Path(__file__).resolve().parents[2]

MakeDist = Callable[[str, str, dict[str, str] | None], Path]


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


# -- scoping ----------------------------------------------------------------------------------------


def test_isolated_scope_takes_class_level_registrations_and_drops_them_after() -> None:
    outer = PluginRegistry.default()
    with PluginRegistry.isolated() as scoped:
        assert PluginRegistry.default() is scoped and scoped is not outer

        @PluginRegistry.register("scoped-backend")
        class Scoped:
            def fit(self, config, dataset): ...

        assert PluginRegistry.get("backend", "scoped-backend") is Scoped
        assert scoped.get("backend", "scoped-backend") is Scoped
        assert {"stub", "trl"} <= set(PluginRegistry.list_names("backend"))  # built-ins load in the scope too
    assert PluginRegistry.default() is outer
    assert "scoped-backend" not in PluginRegistry.list_names("backend")


def test_instances_are_independent_registries() -> None:
    def reward(**kwargs: object) -> object:
        return kwargs

    first, second = PluginRegistry(), PluginRegistry()
    first.add("only-in-first", reward, kind="reward")
    assert first.create("reward", "only-in-first", x=1) == {"x": 1}
    assert "only-in-first" not in second.list_names("reward")
    assert "only-in-first" not in PluginRegistry.list_names("reward")
    assert first.list_names("metric") == second.list_names("metric") == PluginRegistry.list_names("metric")


def test_templates_registered_in_a_scope_vanish_with_it() -> None:
    from provenir.data.templates import TEMPLATE_REGISTRY

    with PluginRegistry.isolated():
        TEMPLATE_REGISTRY.register("scoped-jinja", "{{ messages[0].content }}!")
        assert TEMPLATE_REGISTRY.format("scoped-jinja", {"prompt": "hi"}) == "hi!"
        assert "scoped-jinja" in PluginRegistry.list_names("template")
    assert "scoped-jinja" not in TEMPLATE_REGISTRY.list_names()


# -- entry points -------------------------------------------------------------------------------------


@pytest.fixture()
def make_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeDist]:
    """Install a throwaway distribution: a dist-info folder (and a module) on a temporary sys.path entry.

    importlib.metadata reads it exactly as it reads a pip-installed package; the first distribution
    of a name on sys.path wins, so one named ``provenir`` stands in for Provenir's own metadata.
    """
    modules: list[str] = []

    def make(name: str, entry_points: str, files: dict[str, str] | None = None) -> Path:
        site = tmp_path / f"site-{name}-{len(modules)}"
        info = site / f"{name.replace('-', '_')}-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(entry_points)
        for rel, text in (files or {}).items():
            (site / rel).write_text(text)
            modules.append(Path(rel).stem)
        monkeypatch.syspath_prepend(str(site))  # also invalidates the import and metadata caches
        return site

    yield make
    for module in modules:
        sys.modules.pop(module, None)


THIRD_PARTY = """
class Backend:
    def fit(self, config, dataset): ...

class Metric:
    name = "tp"
    binary = True

    def compute(self, predictions, references): ...

class Template:
    name = "tp-template"

    def render(self, messages, *, add_generation_prompt):
        return "|".join(m["content"] for m in messages) + ("=>" if add_generation_prompt else "")

TEMPLATE = Template()
"""


def test_a_third_party_package_registers_through_its_entry_points(make_dist: MakeDist) -> None:
    make_dist(
        "tp-plugins",
        "[provenir.backends]\ntp-backend = tp_plugins:Backend\n\n"
        "[provenir.templates]\ntp-template = tp_plugins:TEMPLATE\n\n"
        # The kind-agnostic group: the kind comes from the protocol method. StubBackend is already
        # registered as "stub", so naming it again adds no second name.
        "[provenir.plugins]\ntp-metric = tp_plugins:Metric\nep-backend = provenir.train.backends.stub:StubBackend\n",
        {"tp_plugins.py": THIRD_PARTY},
    )
    import tp_plugins  # type: ignore[import-not-found]

    from provenir.data.templates import TemplateRegistry
    from provenir.train.backends.stub import StubBackend

    registry = PluginRegistry()
    assert registry.get("backend", "tp-backend") is tp_plugins.Backend
    assert registry.get("metric", "tp-metric") is tp_plugins.Metric
    assert registry.get("backend", "stub") is StubBackend  # the built-ins, through the same loader
    assert "ep-backend" not in registry.list_names("backend")
    templates = TemplateRegistry(registry)
    assert templates.get("tp-template") is tp_plugins.TEMPLATE
    assert templates.format("tp-template", {"system": "s", "prompt": "p"}) == "s|p=>"
    with PluginRegistry.isolated():  # the default registry, as the CLI and runner use it
        assert PluginRegistry.create("backend", "tp-backend").fit is not None


def test_a_broken_third_party_entry_point_is_reported_by_name(make_dist: MakeDist) -> None:
    make_dist("tp-broken", "[provenir.judges]\nbroken = tp_missing_module:Judge\n")
    with pytest.raises(
        PluginError, match=r"judge plugin entry point 'broken' \(tp_missing_module:Judge\) failed"
    ):
        PluginRegistry().list_names("judge")


def test_stale_provenir_metadata_fails_loudly_with_the_fix(make_dist: MakeDist) -> None:
    make_dist("provenir", "[console_scripts]\nprovenir = provenir.cli.main:main\n")  # no plugin groups
    with pytest.raises(PluginError) as caught:
        PluginRegistry().list_names("metric")
    message = str(caught.value)
    assert "\n" not in message
    assert "declares no built-in metric plugins" in message and "reinstall" in message
    assert "pip install -e ." in message


def test_a_builtin_entry_point_naming_code_that_is_gone_says_reinstall(make_dist: MakeDist) -> None:
    make_dist("provenir", "[provenir.rewards]\nold = provenir.rewards.no_such_module:Old\n")
    with pytest.raises(PluginError, match="built-in reward plugin 'old' names .* reinstall it"):
        PluginRegistry().list_names("reward")


def test_the_registry_has_exactly_the_builtins_pyproject_declares() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    registry = PluginRegistry()
    for kind in KINDS:
        names = set(declared[KIND_GROUPS[kind]])
        assert names, kind
        assert set(registry.list_names(kind)) == names, kind
    assert declared["provenir.plugins"] == {}  # Provenir's own plugins all name their kind


def test_builtin_templates_are_the_pinned_builtin_objects() -> None:
    from provenir.data.templates import BUILTIN_TEMPLATES, TEMPLATE_REGISTRY, template_pin
    from provenir.data.templates.formats import BUILTIN_TEMPLATE_OBJECTS

    assert (
        set(BUILTIN_TEMPLATES) == set(BUILTIN_TEMPLATE_OBJECTS) == set(PluginRegistry.list_names("template"))
    )
    for name in BUILTIN_TEMPLATES:
        assert PluginRegistry.get("template", name) is BUILTIN_TEMPLATE_OBJECTS[name]
        assert template_pin(name, TEMPLATE_REGISTRY.get(name)).origin == "builtin"
