"""``flare-uda train``: train a segmentation U-Net on labelled volumes."""

from __future__ import annotations

from pathlib import Path

import click

from flare_uda.cli._options import device_option, quiet_option


def load_training_cases(
    images: Path,
    labels: Path | None,
    label_map: str,
    modality: str | None,
) -> list:
    """Labelled cases from an nnU-Net raw dataset folder, or image + label folders.

    Parameters
    ----------
    images : Path
        A dataset folder (``imagesTr/``, labels from ``labelsTr/``) or a folder
        of image volumes.
    labels : Path or None
        Folder of label volumes matched to images by case id (file name without
        suffix and ``_0000``); only for a plain image folder.
    label_map : str
        Source label map of the label files (remapped to FLARE order).
    modality : {"CT", "MR"} or None
        Needed for a plain folder; a dataset folder says it in its metadata.

    Raises
    ------
    click.UsageError
        ``--labels`` given with a dataset folder, or missing (or ``--modality``
        missing) with a plain folder.
    ValueError
        A label file missing for an image, or unreadable files.
    """
    from flare_uda.data.datasets import read_dataset, read_folder
    from flare_uda.data.io import read_label
    from flare_uda.data.labels import get_label_map
    from flare_uda.metrics.folders import list_cases
    from flare_uda.volume import Case

    if (images / "imagesTr").is_dir():
        if labels is not None:
            raise click.UsageError(
                f"--labels is not used with a dataset folder ({images} has imagesTr/, labels come "
                "from its labelsTr/); expected --labels only with a plain image folder"
            )
        cases = read_dataset(images, splits=("train",), label_map=label_map)
        if modality is not None:
            cases = [
                Case(c.case_id, c.image, c.label, modality, c.sequence, c.annotated) for c in cases
            ]
        unlabelled = [c.case_id for c in cases if c.label is None]
        if unlabelled:
            raise ValueError(f"expected a label in labelsTr/ for every case, missing {unlabelled}")
        return cases
    if labels is None:
        raise click.UsageError(
            f"{images} is not an nnU-Net dataset folder (no imagesTr/); expected --labels DIR too"
        )
    if modality is None:
        raise click.UsageError("a plain image folder needs --modality CT or MR, got none")
    label_files = list_cases(labels, "--labels")
    cases = read_folder(images, modality=modality)
    missing = [c.case_id for c in cases if c.case_id not in label_files]
    if missing:
        raise ValueError(
            f"expected a label in {labels} for every image, missing case ids {missing}; "
            f"labels found: {sorted(label_files)}"
        )
    annotated = get_label_map(label_map).annotated
    return [
        Case(
            c.case_id,
            c.image,
            read_label(label_files[c.case_id], label_map),
            modality,
            annotated=annotated,
        )
        for c in cases
    ]


@click.command("train")
@click.option(
    "--images",
    "-i",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="nnU-Net raw dataset folder, or a folder of images.",
)
@click.option(
    "--labels",
    "-l",
    default=None,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of labels matched by case id (plain folders only).",
)
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Model folder; resumes when it holds a checkpoint.",
)
@click.option("--preset", default="quick", show_default=True, help="paper, default, quick or tiny.")
@click.option(
    "--iterations",
    type=click.IntRange(min=1),
    default=None,
    help="Override the preset's number of training steps.",
)
@click.option(
    "--minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Wall-clock training budget: the learning rate decays over it and training stops "
    "when it is spent (or at --iterations, whichever comes first).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Start afresh: remove the checkpoints of an earlier run in --out (otherwise a run "
    "of the same config on the same data resumes, and any other run is an error).",
)
@click.option("--seed", type=int, default=None, help="Override the preset's seed.")
@click.option(
    "--label-map",
    default="flare",
    show_default=True,
    help="Source label map of the labels (flare, amos, total, ...).",
)
@click.option(
    "--modality",
    type=click.Choice(["CT", "MR"]),
    default=None,
    help="Modality of a plain image folder.",
)
@click.option(
    "--head",
    type=click.Choice(["softmax", "sigmoid"]),
    default=None,
    help="Override the preset's output head.",
)
@click.option(
    "--val-cases",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Hold out the last N cases for validation DSC.",
)
@device_option
@quiet_option
def command(
    images,
    labels,
    out,
    preset,
    iterations,
    minutes,
    overwrite,
    seed,
    label_map,
    modality,
    head,
    val_cases,
    device,
    quiet,
) -> None:
    """Train a segmentation network on labelled volumes; writes a model folder.

    Under torchrun (torchrun --nproc-per-node N -m flare_uda train ...) the N
    processes train one model (DDP: gloo on the CPU, a GPU each on CUDA) on
    shares of each batch; rank 0 writes --out, which all ranks resume from.
    """
    from flare_uda.cli import _checks
    from flare_uda.cli._errors import message_of
    from flare_uda.segmentation import get_preset, train_segmenter
    from flare_uda.segmentation.distributed import is_main

    _checks.not_input(out, "--out", images, labels)
    _checks.device(device)
    _checks.output_dir(out, "--out")
    overrides = {
        k: v
        for k, v in {
            "iterations": iterations,
            "seed": seed,
            "head": head,
            "time_budget_minutes": minutes,
        }.items()
        if v is not None
    }
    if minutes is not None and iterations is None:
        overrides["iterations"] = 10_000_000  # the budget decides

    try:
        config = get_preset(preset, **overrides)
    except (KeyError, ValueError, TypeError) as err:
        raise click.BadParameter(message_of(err), param_hint="--preset") from None
    cases = load_training_cases(images, labels, label_map, modality)
    if val_cases >= len(cases):
        raise click.BadParameter(
            f"expected fewer than the {len(cases)} cases, so that one is left to train on, "
            f"got {val_cases}",
            param_hint="--val-cases",
        )
    train, val = (cases[: len(cases) - val_cases], cases[len(cases) - val_cases :])
    if overwrite and is_main():  # under torchrun: rank 0, before the ranks meet
        from flare_uda.segmentation.checkpoint import remove_checkpoints

        remove_checkpoints(out)
    segmenter = train_segmenter(
        train, config, work_dir=out, val_cases=val or None, progress=not quiet, device=device
    )
    if not is_main():  # under torchrun: rank 0 reports (and wrote the model)
        return
    hist = segmenter.history_
    msg = f"trained {len(train)} case(s), {hist['iterations_done']} iterations -> {out}"
    if hist["loss"]:
        msg += f"; final loss {hist['loss'][-1]:.4f}"
    if hist["val"]:
        msg += f"; validation mean DSC {hist['val'][-1]['mean']:.4f}"
    click.echo(msg)
