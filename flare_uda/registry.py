"""Name -> class registries with "did you mean" errors.

Every plug-in kind (translators, registrars, inferers, ...) keeps one
:class:`Registry`. Unknown names never fall back silently to a default.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError, ValueError):
    """An unknown plug-in or preset name: a ``KeyError`` that is also a ``ValueError``.

    Input errors in flare_uda are ``ValueError``s; lookups raised ``KeyError``
    first, so this class is both and ``except`` clauses for either still work.
    """

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


def unknown_name_error(kind: str, name: str, known: list[str]) -> UnknownNameError:
    """Build the error for an unknown ``name`` with the closest match and the known names."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.4)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return UnknownNameError(f"unknown {kind} {name!r}.{hint} Known: {sorted(known)}")


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
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering a class under ``name``; a duplicate name is an error."""

        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        """Return the object registered under ``name``.

        Raises
        ------
        KeyError
            For an unknown name, naming the closest known one.
        """
        if not isinstance(name, str):
            raise TypeError(f"{self.kind} name must be a str, got {type(name).__name__}")
        try:
            return self._items[name]
        except KeyError:
            raise unknown_name_error(self.kind, name, list(self._items)) from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
