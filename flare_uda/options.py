"""Plain values (YAML, JSON, keywords) into frozen dataclasses, checked against their types.

One converter for every configuration: the pipeline's sections, each plug-in's
``config_class`` and the segmentation overrides. It reads the dataclass's
type hints and, field by field, accepts exactly what they say (``bool`` is not
an ``int``; an ``int`` is a fine ``float``; lists become tuples; mappings
become nested dataclasses), then lets the dataclass's ``__post_init__`` check
the values. Every error names where the value sits (``mdm.registrar.options.lr``),
what was expected and what arrived; unknown names come with a did-you-mean.

Examples
--------
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Opt:
...     steps: int = 1
...     size: tuple[int, ...] = (2,)
>>> build_config(Opt, {"size": [4, 8]}, "demo")
Opt(steps=1, size=(4, 8))
>>> build_config(Opt, {"steps": True}, "demo")
Traceback (most recent call last):
...
TypeError: demo.steps must be an int, got True (bool)
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

from flare_uda.registry import unknown_name_error

NoneType = type(None)


def describe(tp: Any) -> str:
    """What a value of type ``tp`` looks like, in words (for error messages)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        parts = [describe(a) for a in args if a is not NoneType]
        return " or ".join(parts) + (" or null" if NoneType in args else "")
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(args[0])}"
        return f"a list of {len(args)} {_plural(args[0])}" if args else "a list"
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return f"a mapping of {tp.__name__} options"
    return {bool: "true or false", int: "an int", float: "a number", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _plural(tp: Any) -> str:
    return {int: "ints", float: "numbers", str: "strings", bool: "booleans"}.get(tp, describe(tp))


def _got(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def coerce(value: Any, tp: Any, where: str, current: Any = None, metadata: Mapping = {}) -> Any:
    """``value`` as type ``tp`` (converted where safe) or a ``TypeError`` naming ``where``.

    ``current`` is the value being overridden (a nested dataclass given as a
    mapping updates it field by field); ``metadata`` is the dataclass field's
    (``{"kind": ...}`` marks a plug-in spec, see :mod:`flare_uda.plugin`).
    """
    if "kind" in metadata:
        from flare_uda.plugin import PluginSpec

        kind = metadata["kind"]
        if typing.get_origin(tp) is tuple:
            if not isinstance(value, (list, tuple)):
                raise TypeError(f"{where} must be a list of {kind} plug-ins, got {_got(value)}")
            return tuple(PluginSpec.parse(kind, v, f"{where}[{i}]") for i, v in enumerate(value))
        if value is None and NoneType in typing.get_args(tp):
            return None
        return PluginSpec.parse(kind, value, where)
    if tp is Any or tp is object:
        return value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and NoneType in args:
            return None
        for arg in (a for a in args if a is not NoneType):
            try:
                return coerce(value, arg, where, current)
            except TypeError:
                continue
        raise TypeError(f"{where} must be {describe(tp)}, got {_got(value)}")
    if origin is tuple or tp is tuple:
        return _coerce_tuple(value, tp, args, where)
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        return _coerce_mapping(value, args, where)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return build_config(tp, fields_of(value), where)
        if isinstance(value, Mapping):
            return build_config(tp, value, where, base=current if isinstance(current, tp) else None)
        raise TypeError(f"{where} must be {describe(tp)}, got {_got(value)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(tp, type):
        if isinstance(value, tp):
            return value
    else:
        return value  # an annotation this converter does not model (e.g. a Protocol)
    raise TypeError(f"{where} must be {describe(tp)}, got {_got(value)}")


def _coerce_tuple(value: Any, tp: Any, args: tuple, where: str) -> tuple:
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{where} must be {describe(tp)}, got {_got(value)}")
    if not args:
        return tuple(value)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if len(value) != len(args):
        raise TypeError(f"{where} must be {describe(tp)}, got {len(value)} values: {value!r}")
    pairs = enumerate(zip(value, args, strict=True))
    return tuple(coerce(v, a, f"{where}[{i}]") for i, (v, a) in pairs)


def _coerce_mapping(value: Any, args: tuple, where: str) -> dict:
    if not isinstance(value, Mapping):
        raise TypeError(f"{where} must be a mapping, got {_got(value)}")
    if not args:
        return dict(value)
    key_type, value_type = args
    out = {}
    for k, v in value.items():
        # JSON writes int keys as strings: "3" is read back as 3 where keys are ints.
        if key_type is int and isinstance(k, str) and k.strip().lstrip("-").isdigit():
            k = int(k)
        out[coerce(k, key_type, f"{where} key")] = coerce(v, value_type, f"{where}[{k!r}]")
    return out


_OMIT_AT_DEFAULT = "omit_at_default"


def added_option(default: Any) -> Any:
    """A dataclass field added after configs were written: :func:`to_plain` (and
    :func:`omitted_at_default`) leave it out while it holds ``default``, so configs
    written before it, and the pipeline's cache keys made from them, stay equal."""
    return dataclasses.field(default=default, metadata={_OMIT_AT_DEFAULT: True})


def omitted_at_default(config: Any) -> set[str]:
    """Names of ``config``'s :func:`added_option` fields that hold their default."""
    return {
        f.name
        for f in dataclasses.fields(config)
        if f.metadata.get(_OMIT_AT_DEFAULT) and getattr(config, f.name) == f.default
    }


def fields_of(config: Any) -> dict[str, Any]:
    """A dataclass instance's init fields as a dict (shallow: nested values kept)."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.init}


def build_config(cls: type, values: Mapping, where: str, base: Any = None) -> Any:
    """An instance of the dataclass ``cls`` from plain ``values`` (over ``base`` when given).

    Raises
    ------
    KeyError
        (an :class:`~flare_uda.registry.UnknownNameError`) for an unknown field,
        naming the closest one.
    TypeError
        For a value of the wrong type, or a required field left out.
    ValueError
        From the dataclass's own checks, prefixed by ``where``.
    """
    if not isinstance(values, Mapping):
        raise TypeError(f"{where} must be {describe(cls)}, got {_got(values)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            kind = f"option of {where}" if where else "config section"
            raise unknown_name_error(kind, str(key), list(fields))
        current = getattr(base, key) if base is not None else None
        path = f"{where}.{key}" if where else str(key)
        kwargs[key] = coerce(value, hints[key], path, current, fields[key].metadata)
    if base is None:
        missing = [
            name
            for name, f in fields.items()
            if name not in kwargs
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise TypeError(f"{where} needs the options {missing} (no default), got none")
    try:
        return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)
    except (ValueError, TypeError) as err:
        raise type(err)(f"{where}: {err}" if where else str(err)) from None


def to_plain(value: Any) -> Any:
    """``value`` as plain YAML/JSON data: dataclasses -> dicts, tuples -> lists."""
    from flare_uda.plugin import PluginSpec

    if isinstance(value, PluginSpec):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        omitted = omitted_at_default(value)
        return {k: to_plain(v) for k, v in fields_of(value).items() if k not in omitted}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: to_plain(v) for k, v in value.items()}
    return value
