"""``adapt``'s inputs, all read and checked before the first stage runs.

:func:`prepare` resolves the config, reads every source, the target and the
target labels (:mod:`flare_uda.data.user_data`), names the target's
sub-domains (a ``case,sequence`` file, headers, or ``auto`` clustering,
:mod:`flare_uda.pipeline.sequences`, :mod:`flare_uda.pipeline.subdomains`),
builds the stage graph of every setting to run and checks it. Problems of the
call itself (an output overlapping an input, a bad ``--sequences`` file, an
unknown setting or label map) raise :class:`AdaptArgumentError`, which names
the option; problems of the data raise ``ValueError``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from flare_uda._atomic import require_writable_dir
from flare_uda.data.user_data import (
    FolderArg,
    FolderReport,
    parse_folder_arg,
    read_sources,
    read_target,
    read_target_labels,
)
from flare_uda.pipeline.adaptation import MDM
from flare_uda.pipeline.config import UDAConfig
from flare_uda.pipeline.runner import Stage, walk
from flare_uda.pipeline.sequences import (
    AUTO,
    SequenceError,
    check_sequences,
    read_sequence_map,
    sequence_map,
    with_sequences,
)
from flare_uda.pipeline.settings import SETTINGS, Inputs
from flare_uda.pipeline.stages import Cases, Predict
from flare_uda.pipeline.subdomains import (
    CLUSTERS,
    SubDomainOptions,
    case_features,
    cluster_cases,
    group_weights,
)
from flare_uda.volume import Case

METHOD = "asit_mdm_plf"
"""The setting whose model ``adapt`` writes to ``RUN/model`` (the paper's method)."""


class AdaptArgumentError(ValueError):
    """A wrong argument of ``adapt`` (a usage error on the command line); ``option`` names it."""

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.option = option


@dataclass
class Prepared:
    """Everything ``adapt`` runs on, checked (see :func:`prepare`)."""

    config: UDAConfig
    out: Path
    inputs: Inputs
    scored: list[Case]
    settings: tuple[str, ...]
    method: str
    folders: list[FolderReport]
    sequences: str
    features: dict[str, dict[str, float]] | None = None
    weights: dict[str, float] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def auto(self) -> bool:
        return self.features is not None

    def finals(self, config: UDAConfig | None = None) -> dict[str, Stage]:
        """The final stage of every setting to run, for ``config`` (default: the run's)."""
        config = config or self.config
        return {name: SETTINGS.get(name)(config, self.inputs) for name in self.settings}


def resolve_config(config: Any, preset: str) -> UDAConfig:
    """A :class:`UDAConfig`: ``config`` itself, or a YAML path or dict updating ``preset``.

    Raises
    ------
    AdaptArgumentError
        An unknown preset (``--preset``), or a config file or dict whose sections,
        names or values are wrong (``--config``), before any work.
    TypeError
        ``config`` of another type.
    """
    from flare_uda.pipeline.presets import get_preset

    if config is not None and not isinstance(config, (UDAConfig, Mapping, str, os.PathLike)):
        raise TypeError(
            f"config must be a UDAConfig, a YAML path, a dict or None, got {type(config).__name__}"
        )
    try:
        base = get_preset(preset)
    except KeyError as err:
        raise AdaptArgumentError(str(err), "--preset") from None
    if config is None or isinstance(config, UDAConfig):
        return config or base
    try:
        if isinstance(config, Mapping):
            return UDAConfig.from_dict(dict(config), base=base)
        return UDAConfig.from_yaml(config, base=base)
    except (KeyError, ValueError, TypeError) as err:
        raise AdaptArgumentError(str(err.args[0] if err.args else err), "--config") from None


def check_out(out: Path, inputs: Sequence[tuple[str, Path]], config_path: Path | None, text: str):
    """Refuse an output folder that is, holds or lies inside an input.

    A ``--config`` inside it is allowed only as ``out/config.yaml`` holding exactly
    the config the run writes there (resuming from the run's own saved config).
    """
    from flare_uda._atomic import require_not_input

    if config_path is not None and config_path.resolve() == (out / "config.yaml").resolve():
        if config_path.read_text(encoding="utf-8") != text:
            raise AdaptArgumentError(
                f"the run writes {out / 'config.yaml'} itself, so it would overwrite the input "
                f"config {config_path}; expected a config outside {out} (or that run's own)",
                "--config",
            )
        config_path = None
    for option, path in [*inputs, ("--config", config_path)]:
        try:
            require_not_input(out, path)
        except ValueError as err:
            raise AdaptArgumentError(f"{err} ({option})", "--out") from None


def digests(cases: Sequence[Case]) -> dict[str, str]:
    """Case id -> hash of its image, label and geometry (the stage cache's view of the data)."""
    out = {}
    for case in cases:
        h = hashlib.blake2b(digest_size=12)
        for volume in (case.image, case.label):
            if volume is not None:
                h.update(volume.array.tobytes())
                h.update(repr((volume.array.dtype.str, volume.shape, volume.spacing)).encode())
                h.update(repr((volume.origin, volume.direction.round(6).tolist())).encode())
        out[case.case_id] = h.hexdigest()
    return out


def _inputs(sources: list[Case], target: list[Case], scored: list[Case]) -> Inputs:
    by_id = {c.case_id: c for c in scored}
    test = [by_id.get(c.case_id, c) for c in target]
    return Inputs(
        ct=Cases("ct", sources, {"digests": digests(sources)}),
        mr=Cases("mr", target, {"digests": digests(target)}),
        mr_labelled=Cases("mr_labelled", []),
        test=Cases("mr_test", test, {"digests": digests(test)}),
    )


def _settings(config: UDAConfig, method: str, scored: bool, notes: list[str]) -> tuple[str, ...]:
    SETTINGS.get(method)  # an unknown name raises with a did-you-mean
    if not scored:
        return (method,)
    names = [n for n in config.ablation if n != "oracle"]
    if len(names) < len(config.ablation):
        notes.append("oracle not run: the target labels are for scoring only")
    return tuple(names + ([method] if method not in names else []))


def _sequences(target: list[Case], sequences: Any, options: SubDomainOptions | None):
    """(target cases with sequences, where the names came from, appearance statistics or None)."""
    if sequences is None:
        return target, "read from DICOM headers and flare_uda manifests", None
    if isinstance(sequences, str) and sequences == AUTO:
        features = case_features(target)
        clusters = cluster_cases(features, options)
        return with_sequences(target, clusters), "found by clustering (--sequences auto)", features
    ids = [c.case_id for c in target]
    try:
        if isinstance(sequences, Mapping):
            names, origin = sequence_map(sequences, ids, "sequences"), "given"
        else:
            names, origin = read_sequence_map(sequences, ids), f"in {sequences}"
    except SequenceError as err:
        raise AdaptArgumentError(str(err), "--sequences") from None
    return with_sequences(target, names), origin, None


def _check_graph(prepared: Prepared) -> None:
    """Check every stage of every setting; MDM's sub-domains must exist (before any work)."""
    config = prepared.config
    if prepared.auto:  # the ranking names the better cluster later: any order checks
        config = replace(config, mdm=replace(config.mdm, better=CLUSTERS[0], worse=CLUSTERS[1]))
    finals = prepared.finals(config)
    final = finals[prepared.method]
    if not isinstance(final, Predict) or final.space is not None:
        raise AdaptArgumentError(
            f"setting {prepared.method!r} does not give a model of MR intensities (it predicts "
            "through a translator's space), so RUN/model could not be used as is; expected a "
            "setting such as asit_mdm_plf or asit_mdm",
            "setting",
        )
    stages = walk(finals.values())
    if any(isinstance(s, MDM) for s in stages) and not prepared.auto:
        mr = prepared.inputs.mr.cases
        try:
            check_sequences(mr, config.mdm.better, config.mdm.worse, prepared.sequences)
        except SequenceError as err:
            raise AdaptArgumentError(str(err), "--sequences") from None
    for stage in stages:
        stage.check()


FolderLike = str | os.PathLike | FolderArg
"""A folder argument: a path, ``"DIR:MAP"`` or a parsed :class:`FolderArg`."""


def _folder_args(value: FolderLike | Sequence[FolderLike]) -> list[FolderArg]:
    """One folder argument or several, parsed."""
    values = [value] if isinstance(value, (str, os.PathLike, FolderArg)) else list(value)
    return [parse_folder_arg(v) for v in values]


def prepare(
    source: FolderLike | Sequence[FolderLike],
    target: str | os.PathLike,
    config: Any = None,
    out: str | os.PathLike = "runs/adapt",
    *,
    sequences: str | os.PathLike | Mapping[str, str] | None = None,
    target_labels: FolderLike | Sequence[FolderLike] | None = None,
    preset: str = "quick",
    method: str = METHOD,
    subdomains: SubDomainOptions | None = None,
    check_output: Callable[[Path], Any] | None = None,
) -> Prepared:
    """Read and check every input of :func:`flare_uda.adapt` (its parameters); no stage runs.

    ``check_output(out)`` runs once the arguments are checked and before any
    volume is read (default: create ``out`` and prove it writable).

    Raises
    ------
    AdaptArgumentError
        A wrong argument (``option`` names it).
    ValueError, FileNotFoundError
        Unreadable or unsuitable data, with the file and what was expected.
    PermissionError
        ``out`` cannot be written.
    """
    folders = {"--source": _folder_args(source), "--target": [parse_folder_arg(target)]}
    if target_labels:  # one folder a label map (e.g. CHAOS T2 and a TotalSegmentator MR)
        folders["--target-labels"] = _folder_args(target_labels)
    for option, args in folders.items():
        for arg in args:
            if not arg.path.is_dir():
                raise AdaptArgumentError(f"expected a folder, got {arg.path}", option)
    resolved = resolve_config(config, preset)
    out = Path(out)
    named = [(o, a.path) for o, args in folders.items() for a in args]
    if isinstance(sequences, (str, os.PathLike)) and sequences != AUTO:
        named.append(("--sequences", Path(sequences)))
    is_path = isinstance(config, (str, os.PathLike))
    check_out(out, named, Path(config) if is_path else None, resolved.to_yaml())
    (check_output or require_writable_dir)(out)
    ct, reports = read_sources(folders["--source"])
    mr, target_report = read_target(folders["--target"][0])
    reports.append(target_report)
    scored = []
    for arg in folders.get("--target-labels", []):
        labelled, labels_report = read_target_labels(arg, mr)
        twice = sorted(set(labelled) & {c.case_id for c in scored})
        if twice:
            raise AdaptArgumentError(
                f"cases {twice[:5]} have labels in more than one --target-labels folder "
                f"(again in {arg.path}); expected each target case labelled once",
                "--target-labels",
            )
        scored += list(labelled.values())
        reports.append(labels_report)
    mr, origin, features = _sequences(mr, sequences, subdomains)
    by_id = {c.case_id: c for c in mr}
    scored = [by_id[c.case_id].with_label(c.label, c.annotated) for c in scored]
    notes: list[str] = []
    prepared = Prepared(
        config=resolved,
        out=out,
        inputs=_inputs(ct, mr, scored),
        scored=scored,
        settings=_settings(resolved, method, bool(scored), notes),
        method=method,
        folders=reports,
        sequences=origin,
        features=features,
        weights=None if features is None else group_weights(features, subdomains),
        notes=notes,
    )
    _check_graph(prepared)
    return prepared
