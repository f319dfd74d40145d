"""The pseudo-label stage's plug-in kinds: :class:`PseudoLabelFilter` and :class:`Ensembler`.

A *history* maps each case id to its pseudo-labels of successive
self-training rounds, oldest first: ``dict[str, list[Volume | np.ndarray]]``.
A filter keeps some case ids; an ensembler fuses one case's labels into one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from flare_uda.plugin import Plugin, PluginSpec, plugin_list_field, resolve_plugin_fields
from flare_uda.registry import Registry
from flare_uda.volume import Volume

FILTERS: Registry[type[PseudoLabelFilter]] = Registry("pseudo-label filter")
ENSEMBLERS: Registry[type[Ensembler]] = Registry("ensembler")

LabelLike = Volume | np.ndarray
History = Mapping[str, Sequence[LabelLike]]


def label_arrays(labels: Sequence[LabelLike], min_count: int = 1) -> list[np.ndarray]:
    """Integer arrays of one shape from Volumes or arrays; raise on fewer than ``min_count``."""
    if isinstance(labels, (np.ndarray, Volume)):
        raise TypeError(f"expected a sequence of label maps, got a single {type(labels).__name__}")
    arrays = [lab.array if isinstance(lab, Volume) else np.asarray(lab) for lab in labels]
    if len(arrays) < min_count:
        raise ValueError(f"expected at least {min_count} label maps, got {len(arrays)}")
    for a in arrays:
        if not (np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
            raise ValueError(f"label maps must hold integers, got dtype {a.dtype}")
        if a.shape != arrays[0].shape:
            raise ValueError(
                f"label maps must share one shape, got {arrays[0].shape} and {a.shape}"
            )
    return arrays


class PseudoLabelFilter(Plugin, ABC):
    """Selects the case ids whose pseudo-labels are trusted."""

    kind = "filter"

    def select(self, history: History) -> list[str]:
        """Kept case ids, in ``history`` order.

        Raises
        ------
        ValueError
            If ``history`` is empty.
        """
        if not isinstance(history, Mapping):
            raise TypeError(f"expected a dict case_id -> labels, got {type(history).__name__}")
        if not history:
            raise ValueError("expected a non-empty history, got no cases")
        kept = set(self.keep(history))
        return [cid for cid in history if cid in kept]

    @abstractmethod
    def keep(self, history: History) -> list[str]:
        """Case ids to keep (any order)."""


@dataclass(frozen=True)
class AllOfOptions:
    """Options of :class:`AllOf`: ``filters``, a list of filter plug-ins (objects or specs)."""

    filters: tuple[PluginSpec, ...] = plugin_list_field("filter")

    def __post_init__(self) -> None:
        resolve_plugin_fields(self)
        if not self.filters:
            raise ValueError("expected at least one filter, got none")


@FILTERS.register("all_of")
class AllOf(PseudoLabelFilter):
    """Keeps a case only if every filter keeps it (filters compose by intersection).

    Filters run in order, each on the cases the previous ones kept, so a
    keep-fraction filter placed last takes its fraction of the survivors.
    ``filters`` may be filter objects or ``{name, options}`` specs; they are
    kept as specs (so the composition round-trips) and built once, in
    :attr:`filters_`.
    """

    config_class = AllOfOptions

    def __init__(self, config: Any = None, **options: Any) -> None:
        super().__init__(config, **options)
        self.filters_ = [spec.build() for spec in self.config.filters]

    def keep(self, history: History) -> list[str]:
        current = dict(history)
        for f in self.filters_:
            if not current:
                break
            kept = set(f.select(current))
            current = {k: v for k, v in current.items() if k in kept}
        return list(current)


class Ensembler(Plugin, ABC):
    """Fuses one case's pseudo-labels of several rounds into one label map."""

    kind = "ensembler"

    def __call__(self, labels: Sequence[LabelLike]) -> LabelLike:
        """The fused label, a Volume with the first input's geometry when given Volumes."""
        arrays = label_arrays(labels)
        fused = self.fuse(arrays)
        first = labels[0]
        return first.with_array(fused) if isinstance(first, Volume) else fused

    @abstractmethod
    def fuse(self, arrays: list[np.ndarray]) -> np.ndarray:
        """Fuse arrays of one shape (oldest round first) into one label array."""


def get_ensembler(name: str, **options: Any) -> Ensembler:
    """An ensembler by registry name (``"union"``, ``"majority"``) and its options."""
    return Ensembler.from_config({"name": name, "options": options})


def get_filter(name: str, **options: Any) -> PseudoLabelFilter:
    """A filter by registry name (``"uncertainty"``, ``"volume_prior"``, ``"all_of"``)."""
    return PseudoLabelFilter.from_config({"name": name, "options": options})
