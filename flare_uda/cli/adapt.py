"""``flare-uda adapt``: the whole method on the user's own labelled CT and unlabelled MRI."""

from __future__ import annotations

import click

from flare_uda.cli import _checks
from flare_uda.cli._executor import executor_options
from flare_uda.cli._options import device_option, quiet_option, train_processes_option


@click.command(name="adapt")
@click.option(
    "--source",
    "sources",
    multiple=True,
    required=True,
    help="Labelled CT: an nnU-Net raw dataset or a plain folder (images or DICOM series "
    "sub-folders; labels in labels/ or as {case}_label.*), as DIR or DIR:MAP with MAP one of "
    "flare (default), amos, total, total_mr, chaos, chaos_ct, btcv. Repeat for more folders.",
)
@click.option("--target", required=True, help="Unlabelled MRI, in the same layouts.")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Run folder (model/, labels/, report.md, stages/); rerunning resumes from it.",
)
@click.option(
    "--preset",
    default="quick",
    show_default=True,
    help="A pipeline preset by name: tiny (a smoke test), quick, cpu, paper (GPU), ...",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, exists=True),
    help="YAML config whose sections override --preset's (see flare-uda demo --print-config).",
)
@click.option(
    "--sequences",
    help="The target's MR sub-domains for MDM: a CSV/JSON file of case,sequence, or auto "
    "(cluster by appearance, rank by pseudo-label quality). Default: from DICOM headers.",
)
@click.option(
    "--target-labels",
    multiple=True,
    help="Labels of some target cases (DIR or DIR:MAP): every setting of the config's "
    "ablation is then run and scored on them. Repeat for folders with other label maps.",
)
@click.option(
    "--method",
    default="asit_mdm_plf",
    show_default=True,
    help="The setting whose model is written to OUT/model (and drawn in the report's "
    "overlays): asit_mdm_plf (the paper's chain) or, e.g., synth_mdm_plf (CT with random "
    "contrasts, then MDM and PLF: docs/results.md, 'Real data').",
)
@device_option
@quiet_option
@train_processes_option
@executor_options
def command(
    sources: tuple[str, ...],
    target: str,
    out: str,
    preset: str,
    config_path: str | None,
    sequences: str | None,
    target_labels: tuple[str, ...],
    method: str,
    device: str,
    quiet: bool,
    train_processes: int,
    executor_name: str | None,
    ray_address: str | None,
) -> None:
    """Adapt a CT segmentation to your MRI: ASIT -> MDM -> PLF -> small net, on your folders."""
    from dataclasses import replace

    from flare_uda.cli._executor import executor_spec
    from flare_uda.pipeline.adapt import run_prepared
    from flare_uda.pipeline.adapt_inputs import AdaptArgumentError, prepare
    from flare_uda.registry import PluginLoadError, UnknownNameError

    if config_path:
        _checks.yaml_syntax(config_path, "--config")
    _checks.device(device)
    try:
        prepared = prepare(
            list(sources),
            target,
            config_path,
            out,
            sequences=sequences,
            target_labels=list(target_labels),
            preset=preset,
            method=method,
            check_output=lambda path: _checks.output_dir(path, "--out"),
        )
    except AdaptArgumentError as err:
        raise click.BadParameter(str(err), param_hint=err.option) from err
    except UnknownNameError as err:  # a preset, label map, plug-in or setting name
        raise click.UsageError(str(err)) from err
    except PluginLoadError as err:
        raise click.ClickException(str(err)) from err
    if executor_name is not None or ray_address is not None:  # over the config's engine
        engine = executor_spec(executor_name, ray_address, prepared.config.executor)
        prepared = replace(prepared, config=replace(prepared.config, executor=engine))
    result = run_prepared(prepared, device, not quiet, train_processes)
    click.echo(f"model: {result.model_dir}")
    click.echo(f"labels: {result.run_dir / 'labels'} ({len(result.labels)} cases)")
    click.echo(f"report: {result.report}")
    if result.subdomains is not None:
        click.echo(f"sub-domains: {result.subdomains['better']} better, "
                   f"{result.subdomains['worse']} worse")  # fmt: skip
    sequence = {c.case_id: str(c.sequence) for c in prepared.scored}
    for setting, rows in result.scores.items():
        by_seq: dict[str, list[float]] = {}
        for r in rows:
            if r.dsc == r.dsc:  # not NaN
                by_seq.setdefault(sequence.get(r.case, ""), []).append(r.dsc)
        dsc = [d for v in by_seq.values() for d in v]
        split = ", ".join(f"{s} {100 * sum(v) / len(v):.1f}" for s, v in sorted(by_seq.items()))
        split = f" ({split})" if len(by_seq) > 1 else ""
        click.echo(f"  {setting:14s} mean DSC {100 * sum(dsc) / max(len(dsc), 1):5.1f}{split}")
    for setting, why in result.notes.get("skipped", {}).items():
        click.echo(f"  {setting:14s} not run: {why}")
