"""``flare_uda.adapt``: the method on a user's own labelled CT and unlabelled MRI.

One code path for the Python API and ``flare-uda adapt``: :func:`adapt` =
:func:`~flare_uda.pipeline.adapt_inputs.prepare` (every input read and checked,
no stage run) + :func:`run_prepared` (the stages, cached under ``RUN/stages``
so a killed run resumes, then the outputs). The stage graph is the pipeline's
own (:data:`~flare_uda.pipeline.settings.SETTINGS`), so new settings and
plug-ins work here unchanged. With ``sequences="auto"``, a first pass ranks
the appearance clusters (:mod:`flare_uda.pipeline.subdomains`) on the stages
the method shares with it (translation, first model, first pseudo-labels),
and MDM then runs with the winner as its better domain.

``RUN`` holds ``model/`` (what ``flare-uda predict --model RUN/model`` uses),
``labels/`` (the model's labels of every target case), ``pseudo_labels/``
(self-training's fused labels of the cases it kept), ``report.md`` with its
figures, ``config.yaml``, ``inputs.json``, ``subdomains.json`` (auto only) and
``stages/``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from flare_uda._atomic import replace_dir, write_json
from flare_uda.data.io import write_volume
from flare_uda.metrics import MetricRow
from flare_uda.pipeline.adapt_inputs import METHOD, Prepared, prepare
from flare_uda.pipeline.adaptation import MDM, SelfTraining
from flare_uda.pipeline.runner import Runner, StageRecord, walk
from flare_uda.pipeline.settings import translated_model
from flare_uda.pipeline.stages import NoPseudoLabels, Predict, Train, cases_of
from flare_uda.pipeline.subdomains import CLUSTERS, RankSubDomains, SubDomainOptions, WithLabels
from flare_uda.pipeline.uda import UDAPipeline, UDAResult
from flare_uda.volume import Volume


class MethodNotRun(RuntimeError):
    """The method's setting could not run (e.g. every pseudo-label empty): no model was made."""


@dataclass
class AdaptResult:
    """What :func:`adapt` produced (files under ``run_dir``, see the module docstring).

    Attributes
    ----------
    model : Segmenter
        The method's final segmenter, also saved in ``model_dir``.
    labels : dict case_id -> Volume
        The model's labels (FLARE order) of every target case, on its own grid.
    pseudo_labels : dict case_id -> Volume
        Self-training's fused pseudo-labels of the target cases it kept.
    sequences : dict case_id -> str
        Each target case's sub-domain (a sequence name, or ``auto1``/``auto2``).
    subdomains : dict or None
        ``sequences="auto"``: appearance statistics, clusters, their ranking and the choice.
    scores : dict setting -> list of MetricRow
        DSC/NSD of every setting run on the cases with target labels (empty without).
    notes : dict
        Per-stage diagnostics: ``mdm`` transfers, ``self_training`` uncertainty and
        kept cases, ``skipped`` settings with the reason.
    stages : list of StageRecord
        Every stage, whether it ran or came from the cache, and its wall time.
    """

    run_dir: Path
    model_dir: Path
    model: Any
    labels: dict[str, Volume]
    pseudo_labels: dict[str, Volume]
    sequences: dict[str, str]
    subdomains: dict | None
    scores: dict[str, list[MetricRow]]
    notes: dict[str, Any]
    stages: list[StageRecord]
    report: Path
    settings: tuple[str, ...] = field(default=())


def ranking_stage(config, inputs) -> RankSubDomains:
    """The stage ranking the ``auto`` clusters: ASIT pseudo-labels (the method's own stages,
    shared through the cache) and a probe model's, trained on them.

    The probe trains from scratch even with ``warm_start``: started from the ASIT
    model, it would begin from the very labels its own are compared with (eq. 7).
    """
    translate, model = translated_model(config, inputs, config.translation, "asit")
    first = Predict("pseudo_asit", model, inputs.mr, config.inference, space=translate)
    pseudo = WithLabels("mr_pseudo", inputs.mr, first)
    probe = Train("train_probe", config.segmentation, pseudo, drop_empty=True)
    second = Predict("probe", probe, inputs.mr, config.inference)
    return RankSubDomains(inputs.ct, inputs.mr, first, second)


def choose_subdomains(prepared: Prepared, runner: Runner) -> dict:
    """Run the ranking (when MDM is part of the run); the ranking, or why there is none."""
    config = prepared.config
    placeholder = replace(config, mdm=replace(config.mdm, better="a", worse="b"))
    stages = walk(prepared.finals(placeholder).values())
    if not any(isinstance(s, MDM) for s in stages):
        return {"better": CLUSTERS[0], "worse": CLUSTERS[1], "note": "no setting runs MDM"}
    stage = ranking_stage(config, prepared.inputs)
    runner.plan([stage])
    try:
        return runner.get(stage)
    except NoPseudoLabels as err:
        runner.log(f"sub-domains not ranked: {err}")
        return {"better": CLUSTERS[0], "worse": CLUSTERS[1], "note": f"not ranked: {err}"}


def _write_labels(labels: Mapping[str, Volume], folder: Path) -> None:
    """``folder/{case}.nii.gz`` per label, swapped in whole (no earlier run's file stays)."""
    with replace_dir(folder) as new:
        for case_id, label in labels.items():
            write_volume(label, new / f"{case_id}.nii.gz", is_label=True)


def run_prepared(
    prepared: Prepared, device: str = "auto", progress: bool = True, train_processes: int = 1
) -> AdaptResult:
    """Run the stages of a :func:`~flare_uda.pipeline.adapt_inputs.prepare`'d call; write ``RUN``.

    ``train_processes`` > 1 runs each training stage under torchrun (see :class:`UDAPipeline`).

    Raises
    ------
    MethodNotRun
        When the method's setting could not run (the report says why).
    """
    from flare_uda.pipeline.adapt_report import write_adapt_report

    out = prepared.out
    pipeline = UDAPipeline(prepared.config, out, progress, device, train_processes)
    runner = pipeline.runner()
    out.mkdir(parents=True, exist_ok=True)
    prepared.config.to_yaml(out / "config.yaml")
    write_json(out / "inputs.json", inputs_record(prepared))
    config, subdomains = prepared.config, None
    if prepared.auto:
        ranking = choose_subdomains(prepared, runner)
        subdomains = {"features": prepared.features, "weights": prepared.weights, **ranking}
        write_json(out / "subdomains.json", subdomains)
        mdm = replace(config.mdm, better=ranking["better"], worse=ranking["worse"])
        config = replace(config, mdm=mdm)
        pipeline = UDAPipeline(config, out, progress, device, train_processes)
    finals = prepared.finals(config)
    runner.plan(list(finals.values()))
    result: UDAResult = pipeline.execute(finals, runner)
    if prepared.scored:
        pipeline.evaluate(result, prepared.scored, runner)
    method = prepared.method
    final = finals[method]
    model = pseudo = None
    if method in result.predictions:
        model = runner.get(final.upstream[0])
        model.save(out / "model")
        _write_labels(result.predictions[method], out / "labels")
        st = [s for s in walk([final]) if isinstance(s, SelfTraining)]
        pseudo = {c.case_id: c.label for c in cases_of(runner.get(st[0]))} if st else {}
        _write_labels(pseudo, out / "pseudo_labels")
    result.stages = runner.summary()
    report = write_adapt_report(prepared, result, subdomains, model is not None)
    if model is None:
        why = result.notes.get("skipped", {}).get(method, "it was not run")
        raise MethodNotRun(f"{method} did not run: {why}; no model was written (see {report})")
    return AdaptResult(
        run_dir=out,
        model_dir=out / "model",
        model=model,
        labels=result.predictions[method],
        pseudo_labels=pseudo,
        sequences={c.case_id: str(c.sequence) for c in prepared.inputs.mr.cases},
        subdomains=subdomains,
        scores=result.rows,
        notes=result.notes,
        stages=result.stages,
        report=report,
        settings=prepared.settings,
    )


def inputs_record(prepared: Prepared) -> dict:
    """What was read and how it was understood (``RUN/inputs.json``)."""
    return {
        "folders": [vars(f) for f in prepared.folders],
        "sequences": {
            "origin": prepared.sequences,
            "cases": {c.case_id: c.sequence for c in prepared.inputs.mr.cases},
        },
        "settings": list(prepared.settings),
        "method": prepared.method,
        "notes": prepared.notes,
    }


def adapt(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    target: str | os.PathLike,
    config: Any = None,
    out: str | os.PathLike = "runs/adapt",
    *,
    sequences: str | os.PathLike | Mapping[str, str] | None = None,
    target_labels: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    preset: str = "quick",
    device: str = "auto",
    progress: bool = True,
    train_processes: int = 1,
    method: str = METHOD,
    subdomains: SubDomainOptions | None = None,
) -> AdaptResult:
    """Adapt a CT-trained segmentation to the user's MRI (the whole method), into ``out``.

    Parameters
    ----------
    source : path, ``"DIR:MAP"`` or a list of them
        Labelled CT: nnU-Net raw datasets or plain folders (images, DICOM series
        sub-folders; labels in ``labels/`` or as ``{case}_label.*``). ``MAP`` is
        the label map (``amos``, ``total``, ``total_mr``, ``chaos``, ``chaos_ct``,
        ``btcv``, ``flare``; default FLARE); organs a map lacks are unknown, not
        background.
    target : path
        Unlabelled MRI, in the same layouts.
    config : UDAConfig, YAML path, dict or None
        Sections updating ``preset`` (see docs/usage.md, "The pipeline config");
        its ``executor`` section runs the per-case work serially, on a process
        pool or on Ray (docs/scaling.md).
    out : path
        The run folder; rerunning the same call resumes from its cached stages.
    sequences : ``"auto"``, a CSV/JSON path, a ``{case: sequence}`` dict or None
        The target's MR sub-domains for MDM (None: from DICOM headers / manifests).
    target_labels : path or ``"DIR:MAP"``, or a list of them, optional
        Labels of some target cases (one folder a label map; a case labelled in
        two folders is an error): every setting of ``config.ablation`` (but the
        oracle) is run and scored on them.
    preset : str
        A pipeline preset (``tiny``, ``quick``, ``cpu``, ``paper``, ...).
    device : str
        ``auto``, ``cpu`` or ``cuda``.
    train_processes : int
        Processes each training stage runs on (> 1: torchrun on this machine, DDP).
    method : str
        The setting whose model is written to ``out/model``.
    subdomains : SubDomainOptions, optional
        Feature group weights of ``sequences="auto"``.

    Raises
    ------
    AdaptArgumentError, ValueError, FileNotFoundError
        Before any stage runs, for any wrong argument or input.
    MethodNotRun
        When the method could not run (every pseudo-label empty); ``out/report.md`` says why.
    """
    prepared = prepare(
        source,
        target,
        config,
        out,
        sequences=sequences,
        target_labels=target_labels,
        preset=preset,
        method=method,
        subdomains=subdomains,
    )
    return run_prepared(prepared, device, progress, train_processes)
