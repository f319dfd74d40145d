"""The plug-in contract (flare_uda.plugin) and the typed option reader (flare_uda.options)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from flare_uda.options import build_config, describe, to_plain
from flare_uda.plugin import KINDS, NoOptions, Plugin, PluginSpec, registry, spec
from flare_uda.pseudolabel import ENSEMBLERS, Ensembler, UncertaintyFilter
from flare_uda.registry import Registry, registered_name


@dataclass(frozen=True)
class Inner:
    a: int = 1
    b: float = 0.5


@dataclass(frozen=True)
class Outer:
    steps: int = 3
    rate: float = 0.1
    flag: bool = False
    name: str = "x"
    size: tuple[int, int, int] = (1, 2, 3)
    levels: tuple[int, ...] = (4, 2)
    limit: float | None = None
    table: dict[int, float] = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")


def test_build_config_converts_what_is_safe():
    cfg = build_config(
        Outer,
        {"rate": 2, "size": [3, 4, 5], "levels": [8], "table": {"3": 1}, "inner": {"b": 2}},
        "x",
    )
    assert cfg.rate == 2.0 and isinstance(cfg.rate, float)
    assert cfg.size == (3, 4, 5) and cfg.levels == (8,)
    assert cfg.table == {3: 1.0}  # JSON's string keys read back as ints
    assert cfg.inner == Inner(a=1, b=2.0)
    # nested mappings update the value they override, field by field
    base = Outer(inner=Inner(a=7))
    assert build_config(Outer, {"inner": {"b": 1.5}}, "x", base=base).inner == Inner(7, 1.5)


@pytest.mark.parametrize(
    ("values", "error", "message"),
    [
        ({"steps": True}, TypeError, r"x.steps must be an int, got True \(bool\)"),
        ({"steps": 2.0}, TypeError, r"x.steps must be an int, got 2.0 \(float\)"),
        ({"rate": "0.1"}, TypeError, r"x.rate must be a number, got '0.1' \(str\)"),
        ({"flag": 1}, TypeError, r"x.flag must be true or false, got 1"),
        ({"size": [1, 2]}, TypeError, r"x.size must be a list of 3 ints, got 2 values"),
        ({"levels": 4}, TypeError, r"x.levels must be a list of ints, got 4"),
        ({"levels": [4, "2"]}, TypeError, r"x.levels\[1\] must be an int, got '2'"),
        ({"limit": "none"}, TypeError, r"x.limit must be a number or null, got 'none'"),
        ({"inner": 3}, TypeError, r"x.inner must be a mapping of Inner options, got 3"),
        ({"inner": {"c": 1}}, KeyError, r"unknown option of x.inner 'c'"),
        ({"step": 1}, KeyError, r"unknown option of x 'step'. Did you mean 'steps'"),
        ({"steps": 0}, ValueError, r"x: steps must be >= 1, got 0"),
    ],
)
def test_build_config_errors_name_the_place(values, error, message):
    with pytest.raises(error, match=message):
        build_config(Outer, values, "x")


def test_required_options_and_non_mappings():
    @dataclass(frozen=True)
    class Needs:
        volumes: dict[int, float]

    with pytest.raises(TypeError, match=r"x needs the options \['volumes'\] \(no default\)"):
        build_config(Needs, {}, "x")
    with pytest.raises(TypeError, match=r"x must be a mapping of Needs options, got \[1\]"):
        build_config(Needs, [1], "x")
    assert describe(tuple[float, ...] | None) == "a list of numbers or null"
    assert to_plain(Outer()) == json.loads(json.dumps(to_plain(Outer())))


def test_plugin_round_trip_and_name_from_the_registry():
    f = UncertaintyFilter(keep_fraction=0.5)
    assert f.name == "uncertainty" and registered_name(UncertaintyFilter) == "uncertainty"
    config = f.to_config()
    assert config == {"name": "uncertainty", "options": {"threshold": None, "keep_fraction": 0.5}}
    again = type(f).from_config(json.loads(json.dumps(config)))
    assert again.config == f.config and repr(again) == "UncertaintyFilter(keep_fraction=0.5)"


def test_unregistered_or_badly_declared_plugins():
    class Loose(Ensembler):
        def fuse(self, arrays):
            return arrays[-1]

    with pytest.raises(ValueError, match=r"Loose is not registered: add @ENSEMBLERS.register"):
        Loose().to_config()
    with pytest.raises(TypeError, match="config_class must be a frozen dataclass"):

        class Bad(Plugin):
            config_class = dict


def test_from_config_on_a_concrete_class_needs_that_class():
    from flare_uda.pseudolabel import MajorityEnsembler, UnionEnsembler

    assert isinstance(Ensembler.from_config("majority"), MajorityEnsembler)
    with pytest.raises(ValueError, match="expected a UnionEnsembler, got the 'majority' ensembler"):
        UnionEnsembler.from_config({"name": "majority"})


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (3, TypeError, r"where must be a ensembler plug-in \{name: ..., options: \{...\}\}, got 3"),
        ({"options": {}}, TypeError, "where needs a name"),
        ({"name": 3}, TypeError, "where.name must be a string, got 3"),
        ({"name": "union", "option": {}}, KeyError, "Did you mean 'options'"),
        ({"name": "unoin"}, KeyError, "unknown ensembler 'unoin'. Did you mean 'union'"),
        ({"name": "union", "options": {"k": 1}}, KeyError, "unknown option of where.options 'k'"),
    ],
)
def test_plugin_spec_errors(value, error, message):
    with pytest.raises(error, match=message):
        PluginSpec.parse("ensembler", value, "where")


def test_plugin_spec_forms():
    by_name = PluginSpec.parse("ensembler", "union", "w")
    assert by_name == PluginSpec.parse("ensembler", {"name": "union", "options": None}, "w")
    assert by_name.to_dict() == {"name": "union", "options": {}}
    assert by_name.options == NoOptions()
    assert PluginSpec.parse("ensembler", by_name, "w") is by_name
    with pytest.raises(TypeError, match="w must be a filter plug-in, got a ensembler"):
        PluginSpec.parse("filter", by_name, "w")
    s = spec("filter", "uncertainty", keep_fraction=0.5)
    assert isinstance(s.build(), UncertaintyFilter) and s.build().config.keep_fraction == 0.5
    assert PluginSpec.parse("filter", UncertaintyFilter(keep_fraction=0.5), "w") == s


def test_every_kind_has_a_registry():
    for kind in KINDS:
        assert isinstance(registry(kind), Registry) and len(registry(kind)) >= 1
    with pytest.raises(KeyError, match="unknown plug-in kind 'translater'"):
        registry("translater")
    assert registry("ensembler") is ENSEMBLERS


def test_cli_lists_every_kind_and_its_options():
    from click.testing import CliRunner

    from flare_uda.cli import main

    res = CliRunner().invoke(main, ["plugins"])
    assert res.exit_code == 0, res.output
    for kind in KINDS:
        assert f"{kind}:" in res.output
    res = CliRunner().invoke(main, ["plugins", "filter", "--options"])
    assert "volume_prior" in res.output and 'mean_volumes: "<required>"' in res.output
    res = CliRunner().invoke(main, ["plugins", "registrer"])
    assert res.exit_code == 2 and "Did you mean 'registrar'" in res.output


def test_added_option_is_left_out_of_plain_values_at_its_default():
    """Options added after run folders existed do not change the configs (cache keys)
    written without them, and appear once set."""
    from dataclasses import dataclass

    from flare_uda.options import added_option, omitted_at_default, to_plain

    @dataclass(frozen=True)
    class Opt:
        steps: int = 1
        scale: str = added_option("percentile")

    assert to_plain(Opt()) == {"steps": 1}
    assert omitted_at_default(Opt()) == {"scale"}
    assert to_plain(Opt(scale="rank")) == {"steps": 1, "scale": "rank"}
    assert omitted_at_default(Opt(scale="rank")) == set()
