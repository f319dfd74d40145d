"""The pseudo-label stage's plug-in kinds: :class:`PseudoLabelFilter` and :class:`Ensembler`.

A *history* maps each case id to its pseudo-labels of successive
self-training rounds, oldest first: ``dict[str, list[Volume | np.ndarray]]``.
A filter keeps some case ids, and per kept case the organs it trusts
(:meth:`PseudoLabelFilter.select_organs`; a case-wise filter trusts all of
them); an ensembler fuses one case's labels into one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from flare_uda.plugin import Plugin, PluginSpec, plugin_list_field, resolve_plugin_fields
from flare_uda.registry import Registry
from flare_uda.volume import Case, Volume

FILTERS: Registry[type[PseudoLabelFilter]] = Registry("pseudo-label filter")
ENSEMBLERS: Registry[type[Ensembler]] = Registry("ensembler")

LabelLike = Volume | np.ndarray
History = Mapping[str, Sequence[LabelLike]]
ALL_ORGANS = tuple(range(1, 14))


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


def _check_history(history: History) -> None:
    if not isinstance(history, Mapping):
        raise TypeError(f"expected a dict case_id -> labels, got {type(history).__name__}")
    if not history:
        raise ValueError("expected a non-empty history, got no cases")


class PseudoLabelFilter(Plugin, ABC):
    """Selects the case ids whose pseudo-labels are trusted, and per case the trusted organs.

    Organ-wise filters override :meth:`keep_organs`; a filter that learns from
    the labelled source cases (a prior) says so in :attr:`learns_from_source`
    and learns in :meth:`fit`.
    """

    kind = "filter"

    def select(self, history: History) -> list[str]:
        """Kept case ids, in ``history`` order.

        Raises
        ------
        ValueError
            If ``history`` is empty.
        """
        _check_history(history)
        kept = set(self.keep(history))
        return [cid for cid in history if cid in kept]

    def select_organs(
        self, history: History, images: Mapping[str, Volume] | None = None
    ) -> dict[str, tuple[int, ...]]:
        """``{case_id: trusted organs}`` for the kept cases, in ``history`` order.

        An organ left out of a kept case is *unknown* there (not background):
        the pipeline removes it from the label and from ``Case.annotated``.
        ``images``: each case's image, for filters that need the body.
        """
        _check_history(history)
        organs = self.keep_organs(history, images)
        return {cid: tuple(sorted(organs[cid])) for cid in history if organs.get(cid)}

    def keep_organs(
        self, history: History, images: Mapping[str, Volume] | None
    ) -> dict[str, tuple[int, ...]]:
        """Trusted organs per kept case (a case-wise filter: every organ of its kept cases)."""
        return {cid: ALL_ORGANS for cid in self.keep(history)}

    @property
    def learns_from_source(self) -> bool:
        """Whether :meth:`fit` must see the labelled source cases before selecting."""
        return False

    def fit(self, source_cases: Sequence[Case]) -> PseudoLabelFilter:
        """Learn from labelled source cases (nothing, unless :attr:`learns_from_source`)."""
        return self

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

    def keep_organs(
        self, history: History, images: Mapping[str, Volume] | None
    ) -> dict[str, tuple[int, ...]]:
        """Organs every filter trusts, each filter seeing the cases the previous ones kept."""
        current = dict(history)
        organs = {cid: set(ALL_ORGANS) for cid in history}
        for f in self.filters_:
            if not current:
                break
            trusted = f.select_organs(current, images)
            organs = {cid: organs[cid] & set(o) for cid, o in trusted.items()}
            organs = {cid: o for cid, o in organs.items() if o}
            current = {k: v for k, v in current.items() if k in organs}
        return {cid: tuple(organs[cid]) for cid in current}

    @property
    def learns_from_source(self) -> bool:
        return any(f.learns_from_source for f in self.filters_)

    def fit(self, source_cases: Sequence[Case]) -> AllOf:
        for f in self.filters_:
            f.fit(source_cases)
        return self


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
    """A filter by registry name (``"uncertainty"``, ``"organ_wise"``, ``"volume_prior"``,
    ``"all_of"``)."""
    return PseudoLabelFilter.from_config({"name": name, "options": options})
