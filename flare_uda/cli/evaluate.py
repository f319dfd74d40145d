"""``flare-uda evaluate``: FLARE DSC and NSD of a prediction folder against references."""

from __future__ import annotations

from pathlib import Path

import click

from flare_uda.cli._executor import executor_options

FOLDER = click.Path(exists=True, file_okay=False)
OUT_FOLDER = click.Path(file_okay=False)


@click.command("evaluate")
@click.option("--pred", "pred_dir", required=True, type=FOLDER, help="Prediction folder.")
@click.option("--ref", "ref_dir", required=True, type=FOLDER, help="Reference folder.")
@click.option("--out", "out_dir", required=True, type=OUT_FOLDER, help="Output folder.")
@click.option("--label-map", default="flare", show_default=True, help="Label map of the files.")
@click.option(
    "--pred-label-map", default=None, help="Label map of the predictions (default: --label-map)."
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=int,
    help="Parallel processes (--executor process, the default) or local Ray CPUs.",
)
@click.option(
    "--no-nsd-gate", is_flag=True, help="Do not set NSD to 0 when DSC < 0.2 (FLARE 2022 rule)."
)
@click.option(
    "--tubular-crop",
    type=click.Choice(["flare", "inclusive", "off"]),
    default="flare",
    show_default=True,
    help="z-range rule for aorta, IVC, esophagus.",
)
@click.option("--no-plot", is_flag=True, help="Skip the box plot.")
@executor_options
def command(
    pred_dir: str,
    ref_dir: str,
    out_dir: str,
    label_map: str,
    pred_label_map: str | None,
    workers: int,
    no_nsd_gate: bool,
    tubular_crop: str,
    no_plot: bool,
    executor_name: str | None,
    ray_address: str | None,
) -> None:
    """Write metrics.csv, summary.csv, missing.txt and boxplot.png into --out.

    Cases are matched by file name (suffix and _0000 removed). A reference
    without prediction is scored 0 for every organ and listed.
    """
    from flare_uda.cli import _checks
    from flare_uda.cli._errors import message_of
    from flare_uda.cli._executor import executor_spec
    from flare_uda.data.labels import get_label_map
    from flare_uda.metrics.folders import evaluate_folders
    from flare_uda.plugin import spec

    if workers < 1:
        raise click.BadParameter(f"expected >= 1, got {workers}", param_hint="--workers")
    engine = executor_spec(
        executor_name, ray_address, spec("executor", "process"), workers=workers, progress=True
    )
    for option, name in (("--label-map", label_map), ("--pred-label-map", pred_label_map)):
        try:
            get_label_map(name or label_map)
        except KeyError as err:
            raise click.BadParameter(message_of(err), param_hint=option) from None
    _checks.not_input(out_dir, "--out", pred_dir, ref_dir)
    _checks.output_dir(out_dir, "--out")
    result = evaluate_folders(  # absolute paths: tasks may run on other nodes (Ray)
        Path(pred_dir).resolve(),
        Path(ref_dir).resolve(),
        out_dir,
        label_map=label_map,
        pred_label_map=pred_label_map,
        executor=engine.build(),
        nsd_gate=None if no_nsd_gate else 0.2,
        tubular_crop=tubular_crop,
        plot=not no_plot,
    )
    if result.missing:
        click.echo(
            f"{len(result.missing)} case(s) missing from --pred, scored 0: "
            + ", ".join(result.missing),
            err=True,
        )
    if result.unmatched:
        click.echo(
            f"{len(result.unmatched)} prediction(s) without reference, not scored: "
            + ", ".join(result.unmatched),
            err=True,
        )
    click.echo("| organ | DSC | NSD |\n|---|---|---|")
    for row in result.summary:
        click.echo(
            f"| {row['organ']} | {row['dsc_mean']:.4f} ± {row['dsc_std']:.4f} "
            f"| {row['nsd_mean']:.4f} ± {row['nsd_std']:.4f} |"
        )
    click.echo(f"wrote {', '.join(str(p) for p in result.paths.values())}")
