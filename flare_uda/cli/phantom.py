"""``flare-uda phantom``: write the synthetic CT + MR cohort as two nnU-Net raw datasets."""

from __future__ import annotations

from pathlib import Path

import click

from flare_uda.data.phantom.config import PHANTOM_PRESETS


@click.command(name="phantom")
@click.option(
    "--preset",
    default="quick",
    show_default=True,
    help=f"Grid preset: one of {sorted(PHANTOM_PRESETS)}.",
)
@click.option("--n-ct", default=8, show_default=True, type=click.IntRange(min=1), help="CT cases.")
@click.option(
    "--n-mri", default=8, show_default=True, type=click.IntRange(min=1),
    help="MR cases, split across T1 and T2.",
)  # fmt: skip
@click.option(
    "--seed", default=0, show_default=True, type=click.IntRange(min=0),
    help="Cohort seed; every case derives its own (CT and MR subjects differ).",
)  # fmt: skip
@click.option(
    "--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
    help="Output folder; receives ct/ and mr/ (and preview.png with --preview).",
)  # fmt: skip
@click.option("--lesion/--no-lesion", default=False, show_default=True,
              help="Put one lesion into the liver or a kidney of every case.")  # fmt: skip
@click.option("--preview/--no-preview", default=False, show_default=True,
              help="Also write OUT/preview.png (CT, T1, T2 with label overlays).")  # fmt: skip
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1),
              help="Processes generating cases in parallel.")  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Allow a non-empty --out (replaces ct/ and mr/).")
def command(
    preset: str,
    n_ct: int,
    n_mri: int,
    seed: int,
    out: Path,
    lesion: bool,
    preview: bool,
    workers: int,
    overwrite: bool,
) -> None:
    """Generate the synthetic abdominal phantom cohort (CT, MR T1 and T2, 13 organ labels)."""
    from flare_uda._atomic import is_hidden_or_temporary
    from flare_uda.cli import _checks
    from flare_uda.data.datasets import read_dataset
    from flare_uda.data.phantom import get_preset, preview_figure, write_cohort
    from flare_uda.executor import ProcessExecutor

    try:
        get_preset(preset)
    except KeyError as err:
        raise click.BadParameter(str(err.args[0]), param_hint="--preset") from None
    _checks.output_dir(out, "--out")  # also removes a killed run's temporaries
    if any(not is_hidden_or_temporary(p) for p in out.iterdir()) and not overwrite:
        raise click.UsageError(
            f"--out {out} is not empty; choose an empty folder or pass --overwrite"
        )
    executor = ProcessExecutor(workers=workers, progress=True)
    ct_dir, mr_dir = write_cohort(
        out, preset, n_ct, n_mri, seed, progress=True, lesion=lesion, executor=executor,
        overwrite=overwrite,
    )  # fmt: skip
    click.echo(f"wrote {n_ct} CT cases to {ct_dir} and {n_mri} MR cases to {mr_dir}")
    if preview:
        ct = read_dataset(ct_dir)[0]
        mr = read_dataset(mr_dir)
        t1 = next(c for c in mr if c.sequence == "T1")
        t2 = next((c for c in mr if c.sequence == "T2"), t1)
        path = preview_figure(ct, t1, t2, out / "preview.png")
        click.echo(f"wrote {path}")
