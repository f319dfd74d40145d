"""Name -> class registries with "did you mean" errors, and plug-in discovery.

Every plug-in kind (translators, registrars, inferers, ...) keeps one
:class:`Registry`. A class is named once, at its ``register`` call, and learns
that name from the registry (:func:`registered_name`). Unknown names never
fall back silently to a default. Third-party packages add plug-ins through
the ``flare_uda.plugins`` entry point group (:func:`discover`): each entry
point names a module whose import registers its classes.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any, Generic, TypeVar

T = TypeVar("T")

ENTRY_POINT_GROUP = "flare_uda.plugins"
_NAME_ATTRIBUTE = "_flare_uda_registered_name"
_loaded_entry_points: set[tuple[str, str]] = set()


class UnknownNameError(KeyError, ValueError):
    """An unknown plug-in or preset name: a ``KeyError`` that is also a ``ValueError``.

    Input errors in flare_uda are ``ValueError``s; lookups raised ``KeyError``
    first, so this class is both and ``except`` clauses for either still work.
    """

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


class PluginLoadError(RuntimeError):
    """A ``flare_uda.plugins`` entry point could not be imported."""


def unknown_name_error(kind: str, name: str, known: list[str]) -> UnknownNameError:
    """Build the error for an unknown ``name`` with the closest match and the known names."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.4)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return UnknownNameError(f"unknown {kind} {name!r}.{hint} Known: {sorted(known)}")


def discover() -> list[str]:
    """Import every ``flare_uda.plugins`` entry point not imported yet; return their names.

    Raises
    ------
    PluginLoadError
        When an entry point's module fails to import (never skipped silently).
    """
    loaded = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        ident = (ep.name, ep.value)
        if ident in _loaded_entry_points:
            continue
        try:
            ep.load()
        except Exception as err:
            raise PluginLoadError(
                f"could not load the {ENTRY_POINT_GROUP} entry point {ep.name!r} "
                f"({ep.value}): {type(err).__name__}: {err}"
            ) from err
        _loaded_entry_points.add(ident)
        loaded.append(ep.name)
    return loaded


def registered_name(obj: Any) -> str | None:
    """The name ``obj`` was registered under (its own registration, not a base class's)."""
    return vars(obj).get(_NAME_ATTRIBUTE) if hasattr(obj, "__dict__") else None


class Registry(Generic[T]):
    """A mapping from names to plug-in classes (or factories) of one kind.

    Parameters
    ----------
    kind : str
        What the registry holds, used in error messages (e.g. ``"translator"``).

    Examples
    --------
    >>> translators = Registry("translator")
    >>> @translators.register("identity")
    ... class Identity: ...
    >>> translators.get("identity") is Identity
    True
    >>> registered_name(Identity)
    'identity'
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name``; a duplicate name is an error.

        The object learns ``name`` (:func:`registered_name`) unless it already
        has one (an alias registration keeps the first name).
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"{self.kind} name must be a non-empty str, got {name!r}")

        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            if hasattr(obj, "__dict__") and registered_name(obj) is None:
                setattr(obj, _NAME_ATTRIBUTE, name)
            return obj

        return deco

    def get(self, name: str) -> T:
        """Return the object registered under ``name`` (entry points are searched on a miss).

        Raises
        ------
        KeyError
            For an unknown name, naming the closest known one.
        """
        if not isinstance(name, str):
            raise TypeError(f"{self.kind} name must be a str, got {type(name).__name__}")
        if name not in self._items:
            discover()
        try:
            return self._items[name]
        except KeyError:
            raise unknown_name_error(self.kind, name, list(self._items)) from None

    def names(self) -> list[str]:
        """Registered names, sorted (plug-ins of installed packages included)."""
        discover()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
