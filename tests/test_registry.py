"""Registry: registration, lookup, did-you-mean errors that are KeyError and ValueError."""

from __future__ import annotations

import pytest

from flare_uda.registry import Registry, UnknownNameError, unknown_name_error


def make() -> Registry:
    reg: Registry = Registry("widget")

    @reg.register("sliding_window")
    class A: ...

    @reg.register("roi")
    class B: ...

    return reg


def test_register_get_names_contains():
    reg = make()
    assert reg.names() == ["roi", "sliding_window"] == list(reg)
    assert len(reg) == 2 and "roi" in reg and "nope" not in reg
    assert reg.get("roi").__name__ == "B"
    assert "widget" in repr(reg)


def test_reregistering_same_object_is_fine_but_duplicate_name_is_not():
    reg = make()
    cls = reg.get("roi")
    assert reg.register("roi")(cls) is cls
    with pytest.raises(ValueError, match="widget 'roi' is already registered"):
        reg.register("roi")(type("Other", (), {}))


def test_unknown_name_did_you_mean():
    reg = make()
    with pytest.raises(
        KeyError, match="unknown widget 'sliding_windw'. Did you mean 'sliding_window'"
    ):
        reg.get("sliding_windw")
    with pytest.raises(ValueError, match=r"Known: \['roi', 'sliding_window'\]"):
        reg.get("zzzzzzzzzz")
    with pytest.raises(TypeError, match="widget name must be a str, got int"):
        reg.get(3)


def test_unknown_name_error_is_both_and_prints_plainly():
    err = unknown_name_error("label map", "amoss", ["amos", "total"])
    assert isinstance(err, KeyError) and isinstance(err, ValueError)
    assert isinstance(err, UnknownNameError)
    assert str(err) == "unknown label map 'amoss'. Did you mean 'amos'? Known: ['amos', 'total']"
    assert "Did you mean" not in str(unknown_name_error("x", "qqq", ["amos"]))
