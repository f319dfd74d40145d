"""One plug-in contract for every kind: translator, segmenter, inferer, matcher, ...

A plug-in class

- declares its options as a frozen dataclass, ``config_class`` (default:
  :class:`NoOptions`); the constructor takes those fields as keywords (or a
  ``config`` instance) and keeps them, validated, in ``self.config``;
- is registered once, ``@REGISTRY.register("name")``, and learns that name
  (:attr:`Plugin.name`);
- round-trips: ``to_config()`` gives ``{"name": ..., "options": {...}}``, plain
  YAML/JSON data, and ``from_config`` builds the same plug-in back (saved
  models and the pipeline's stage cache rely on it).

Runtime settings that do not change what a plug-in computes (a device, a work
folder, a progress bar) are keyword arguments of the constructor outside
``config_class``; ``from_config(spec, **runtime)`` passes them through and
``to_config`` leaves them out.

In YAML a plug-in is ``{name: ..., options: {...}}`` (or just its name);
:class:`PluginSpec` is that entry, resolved and checked when the file is
loaded, before any work runs.

Examples
--------
>>> from dataclasses import dataclass
>>> from flare_uda.pseudolabel import ENSEMBLERS, Ensembler
>>> @dataclass(frozen=True)
... class LatestOptions:
...     rounds_back: int = 0
>>> @ENSEMBLERS.register("doc_latest")
... class Latest(Ensembler):
...     config_class = LatestOptions
...     def fuse(self, arrays):
...         return arrays[-1 - self.config.rounds_back]
>>> Latest(rounds_back=1).to_config()
{'name': 'doc_latest', 'options': {'rounds_back': 1}}
>>> Ensembler.from_config({"name": "doc_latest", "options": {"rounds_back": 1}}).config
LatestOptions(rounds_back=1)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, ClassVar

from flare_uda.options import build_config, fields_of, to_plain
from flare_uda.registry import Registry, registered_name, unknown_name_error

KINDS: dict[str, tuple[str, str]] = {
    "translator": ("flare_uda.translation", "TRANSLATORS"),
    "segmenter": ("flare_uda.segmentation", "SEGMENTERS"),
    "inferer": ("flare_uda.inference", "INFERERS"),
    "matcher": ("flare_uda.registration", "MATCHERS"),
    "registrar": ("flare_uda.registration", "REGISTRARS"),
    "filter": ("flare_uda.pseudolabel", "FILTERS"),
    "ensembler": ("flare_uda.pseudolabel", "ENSEMBLERS"),
    "executor": ("flare_uda.executor", "EXECUTORS"),
}
"""Plug-in kind -> (package that registers its built-ins, name of its registry there)."""


def registry(kind: str) -> Registry:
    """The registry of plug-in ``kind`` (its package is imported, so built-ins are there)."""
    if kind not in KINDS:
        raise unknown_name_error("plug-in kind", str(kind), list(KINDS))
    module, attribute = KINDS[kind]
    return getattr(import_module(module), attribute)


@dataclass(frozen=True)
class NoOptions:
    """The options of a plug-in that has none."""


class Plugin:
    """Base of every plug-in ABC (see the module docstring).

    Parameters
    ----------
    config : config_class instance, optional
        All options at once (keywords then override its fields). An instance
        of a dataclass that ``config_class`` extends is taken field by field.
    **options
        Fields of ``config_class``.
    """

    kind: ClassVar[str] = ""
    """The plug-in kind (a key of :data:`KINDS`), set by each ABC."""
    config_class: ClassVar[type] = NoOptions
    """The frozen dataclass of this plug-in's options."""
    presets: ClassVar[Mapping[str, Any]] = {}
    """Named option sets (``config_class`` instances), e.g. CycleGAN's ``quick`` and ``paper``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        options = cls.__dict__.get("config_class")
        if options is not None and not (
            dataclasses.is_dataclass(options) and options.__dataclass_params__.frozen
        ):
            raise TypeError(
                f"{cls.__name__}.config_class must be a frozen dataclass, got {options!r}"
            )

    def __init__(self, config: Any = None, **options: Any) -> None:
        self.config = make_config(type(self), config, options)

    @property
    def name(self) -> str:
        """The name this class was registered under."""
        return plugin_name(type(self))

    def to_config(self) -> dict[str, Any]:
        """``{"name": ..., "options": {...}}``: every option, as plain YAML/JSON data."""
        return {"name": self.name, "options": to_plain(self.config)}

    @classmethod
    def from_config(cls, spec: Mapping | PluginSpec | str, **runtime: Any) -> Plugin:
        """The plug-in ``spec`` describes (see :meth:`to_config`), with ``runtime`` keywords.

        On an ABC any registered class of its kind is found; on a concrete class
        the spec must name it or a registered subclass.
        """
        resolved = PluginSpec.parse(cls.kind, spec, cls.kind)
        klass = resolved.plugin_class()
        if not issubclass(klass, cls):
            raise ValueError(f"expected a {cls.__name__}, got the {resolved.name!r} {cls.kind}")
        return klass(resolved.options, **runtime)

    @classmethod
    def from_preset(cls, preset: str, **kwargs: Any) -> Plugin:
        """The plug-in with the options of ``presets[preset]``, ``kwargs`` overriding them."""
        if not cls.presets:
            raise ValueError(f"{cls.__name__} has no presets, got preset {preset!r}")
        if preset not in cls.presets:
            raise unknown_name_error(f"preset of {cls.__name__}", str(preset), list(cls.presets))
        return cls(cls.presets[preset], **kwargs)

    def __repr__(self) -> str:
        defaults = _defaults(type(self).config_class)
        shown = {
            k: v for k, v in fields_of(self.config).items() if k not in defaults or defaults[k] != v
        }
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


def option_defaults(cls: type) -> dict[str, Any]:
    """The default of every option of a ``config_class`` (``"<required>"`` when it has none)."""
    out: dict[str, Any] = {f.name: "<required>" for f in dataclasses.fields(cls) if f.init}
    out.update(_defaults(cls))
    return out


def _defaults(cls: type) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def plugin_name(cls: type) -> str:
    """The registered name of plug-in class ``cls`` (an unregistered class is an error)."""
    name = registered_name(cls)
    if name is None:
        kind = getattr(cls, "kind", "") or "plug-in"
        raise ValueError(
            f"{cls.__name__} is not registered: add @{KINDS.get(kind, ('', 'REGISTRY'))[1]}"
            f".register('a name') above the class, so that configs can name it"
        )
    return name


def make_config(cls: type, config: Any, options: Mapping[str, Any]) -> Any:
    """``cls.config_class`` built from ``config`` (an instance or None) and keyword ``options``."""
    options_class = cls.config_class
    where = f"{cls.__name__} options"
    if config is None:
        values: dict[str, Any] = {}
    elif dataclasses.is_dataclass(config):
        if not isinstance(config, options_class) and not issubclass(options_class, type(config)):
            raise TypeError(
                f"{cls.__name__} takes a {options_class.__name__} config, "
                f"got a {type(config).__name__}"
            )
        values = fields_of(config)
    else:
        raise TypeError(
            f"{cls.__name__} takes a {options_class.__name__} config or keywords, "
            f"got {type(config).__name__}"
        )
    return build_config(options_class, {**values, **options}, where)


@dataclass(frozen=True)
class PluginSpec:
    """A resolved plug-in entry of a config: its kind, registered name and checked options.

    ``options`` is an instance of the plug-in's ``config_class``; :meth:`to_dict`
    is the YAML form ``{"name": ..., "options": {...}}``.
    """

    kind: str
    name: str
    options: Any = field(default_factory=NoOptions)

    @classmethod
    def parse(cls, kind: str, value: Any, where: str) -> PluginSpec:
        """A spec from a name, a ``{name, options}`` mapping, a spec or a plug-in object.

        Raises
        ------
        KeyError
            An unknown plug-in name (with the closest known one).
        TypeError, ValueError
            Malformed entries and options that do not fit the plug-in's ``config_class``.
        """
        if isinstance(value, PluginSpec):
            if value.kind != kind:
                raise TypeError(f"{where} must be a {kind} plug-in, got a {value.kind}")
            return value  # checked when it was made
        if isinstance(value, Plugin):
            value = value.to_config()
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, Mapping):
            raise TypeError(
                f"{where} must be a {kind} plug-in {{name: ..., options: {{...}}}}, "
                f"got {value!r} ({type(value).__name__})"
            )
        for key in value:
            if key not in ("name", "options"):
                raise unknown_name_error(f"key of {where}", str(key), ["name", "options"])
        if "name" not in value:
            raise TypeError(f"{where} needs a name (a registered {kind}), got {dict(value)}")
        name = value["name"]
        if not isinstance(name, str):
            raise TypeError(f"{where}.name must be a string, got {name!r}")
        klass = registry(kind).get(name)
        options = value.get("options") or {}
        if dataclasses.is_dataclass(options):
            options = fields_of(options)
        config = build_config(klass.config_class, options, f"{where}.options")
        return cls(kind, name, config)

    def plugin_class(self) -> type:
        """The registered class."""
        return registry(self.kind).get(self.name)

    def build(self, **runtime: Any) -> Any:
        """A new plug-in object with these options (and ``runtime`` keywords)."""
        return self.plugin_class()(self.options, **runtime)

    def to_dict(self) -> dict[str, Any]:
        """The YAML/JSON form."""
        return {"name": self.name, "options": to_plain(self.options)}


def spec(kind: str, name: str, **options: Any) -> PluginSpec:
    """A checked :class:`PluginSpec` in Python: ``spec("registrar", "torch", lr=0.05)``."""
    return PluginSpec.parse(kind, {"name": name, "options": options}, kind)


def plugin_field(kind: str, name: str, **options: Any) -> Any:
    """A dataclass field holding a :class:`PluginSpec` of ``kind`` (default ``name``, ``options``).

    The field's metadata tells :func:`~flare_uda.options.build_config` which
    registry resolves it when read from YAML.
    """
    return field(default_factory=lambda: spec(kind, name, **options), metadata={"kind": kind})


def resolve_plugin_fields(config: Any) -> None:
    """In a frozen dataclass's ``__post_init__``: parse its plug-in fields given as names,
    mappings or plug-in objects (Python callers) into :class:`PluginSpec` objects."""
    for f in dataclasses.fields(config):
        kind = f.metadata.get("kind")
        value = getattr(config, f.name)
        if kind is None or value is None:
            continue
        if isinstance(value, (list, tuple)):
            parsed: Any = tuple(
                PluginSpec.parse(kind, v, f"{f.name}[{i}]") for i, v in enumerate(value)
            )
        else:
            parsed = PluginSpec.parse(kind, value, f.name)
        object.__setattr__(config, f.name, parsed)


def plugin_list_field(kind: str, *names: str) -> Any:
    """A dataclass field holding a tuple of :class:`PluginSpec` of ``kind``."""
    return field(
        default_factory=lambda: tuple(spec(kind, n) for n in names), metadata={"kind": kind}
    )
