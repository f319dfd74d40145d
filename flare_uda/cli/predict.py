"""``flare-uda predict``: label volumes on each input's own grid, from a trained model folder."""

from __future__ import annotations

import os
from pathlib import Path

import click

from flare_uda.cli._executor import executor_options


def load_segmenter(model_dir: str | os.PathLike, fold: str = "0", device: str = "cpu"):
    """A :class:`~flare_uda.segmentation.base.Segmenter` from a model folder.

    An nnU-Net training output folder (plans.json, dataset.json, fold_*) is
    wrapped with :class:`~flare_uda.segmentation.nnunet.NnUNetSegmenter`; any
    other folder is read as a :class:`NetworkSegmenter` (plan.json, network.json,
    weights.pt).
    """
    from flare_uda.segmentation.nnunet import NnUNetSegmenter, is_nnunet_model_folder

    if is_nnunet_model_folder(model_dir):
        return NnUNetSegmenter.from_model_folder(
            model_dir, fold=fold if fold == "all" else int(fold), device=device
        )
    from flare_uda.segmentation.network_segmenter import NetworkSegmenter

    return NetworkSegmenter.load(model_dir, device=device)


def input_files(path: Path) -> list[Path]:
    """The volume files to predict: ``path`` itself, or the volumes directly inside it.

    A folder without volume files but with DICOM files is one DICOM series.
    Hidden and temporary files (e.g. left by a killed run) are not inputs.
    """
    from flare_uda.data.dicom import is_dicom_folder
    from flare_uda.data.io import READ_SUFFIXES, list_volume_files

    if not path.exists():
        raise click.BadParameter(f"no such file or folder: {path}", param_hint="-i")
    if path.is_file():
        if not path.name.lower().endswith(READ_SUFFIXES):
            raise click.BadParameter(
                f"expected a volume file {READ_SUFFIXES} or a folder, got {path}", param_hint="-i"
            )
        return [path]
    files = list_volume_files(path)
    if not files and is_dicom_folder(path):
        return [path]  # one DICOM series
    if not files:
        raise click.BadParameter(f"no volumes {READ_SUFFIXES} found in {path}", param_hint="-i")
    return files


def case_id(path: Path) -> str:
    """File name without its volume suffix and without nnU-Net's ``_0000`` channel tag."""
    from flare_uda.data.io import READ_SUFFIXES

    name = path.name
    for s in sorted(READ_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(s):
            name = name[: -len(s)]
            break
    return name.removesuffix("_0000")


def build_inferer(
    mode: str,
    step: float,
    skip_empty: bool,
    mirroring: bool,
    batch: int,
    resampling: str = "auto",
    roi_source: str = "organs",
):
    """The inferer for ``--mode`` (a registered name) with the command line's window settings."""
    from flare_uda.inference import Inferer

    fine = {
        "step": step,
        "skip_empty": skip_empty,
        "mirroring": mirroring,
        "sw_batch_size": batch,
        "resampling": resampling,
    }
    if mode == "roi":
        return Inferer.from_config(
            {"name": "roi", "options": {"fine": fine, "roi_source": roi_source}}
        )
    return Inferer.from_config({"name": MODE_ALIASES.get(mode, mode), "options": fine})


MODE_ALIASES = {"plain": "sliding_window"}
"""``--mode plain``: the name of the sliding-window inferer before 0.2."""


def inferer_from_file(path: str | os.PathLike):
    """The inferer a YAML/JSON file names as a plug-in entry ``{name: ..., options: {...}}``.

    Any registered inferer, a plug-in package's included (``flare-uda plugins
    inferer`` lists them).

    Raises
    ------
    click.UsageError
        For a file that is not such a mapping, an unknown name or bad options,
        saying what arrived.
    """
    import yaml

    from flare_uda.inference import Inferer
    from flare_uda.registry import PluginLoadError, UnknownNameError

    try:
        entry = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as err:
        raise click.UsageError(f"--inferer {path}: not valid YAML/JSON ({err})") from None
    if not isinstance(entry, dict) or "name" not in entry:
        raise click.UsageError(
            f"--inferer {path}: expected a mapping {{name: INFERER, options: {{...}}}}, "
            f"got {entry!r}"
        )
    try:
        return Inferer.from_config(entry)
    except (UnknownNameError, PluginLoadError, TypeError, ValueError, KeyError) as err:
        raise click.UsageError(f"--inferer {path}: {err}") from None


@click.command(name="predict")
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="NetworkSegmenter folder or nnU-Net model folder (auto-detected).",
)
@click.option(
    "-i",
    "--input",
    "input_path",
    required=True,
    type=click.Path(path_type=Path),
    help="A volume file, or a folder of volumes.",
)
@click.option(
    "-o",
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder for {case}.nii.gz label maps.",
)
@click.option(
    "--mode",
    type=click.Choice(["sliding_window", "roi", "plain"]),
    default="sliding_window",
    show_default=True,
    help="sliding_window (or plain): windows over the scan; roi: coarse pass, then fine ROI only.",
)
@click.option(
    "--roi-source",
    type=click.Choice(["organs", "body"]),
    default="organs",
    show_default=True,
    help="With --mode roi: the box of a coarse organ pass, or the body (Otsu) box.",
)
@click.option(
    "--step",
    type=float,
    default=0.5,
    show_default=True,
    help="Window step as a fraction of the patch, in (0, 1].",
)
@click.option(
    "--inferer",
    "inferer_file",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML/JSON file {name, options} naming any registered inferer (plug-ins "
    "included); replaces --mode and the window options.",
)
@click.option("--no-skip", is_flag=True, help="Run windows without body voxels too.")
@click.option("--mirroring", is_flag=True, help="nnU-Net's 8-fold mirroring (slower).")
@click.option("--batch", type=int, default=2, show_default=True, help="Windows per network call.")
@click.option(
    "--resampling",
    type=click.Choice(["auto", "nnunet", "torch"]),
    default="auto",
    show_default=True,
    help="To the network's spacing: nnU-Net's spline (CPU) or torch kernels on --device; "
    "auto: torch on CUDA, else nnunet.",
)
@click.option(
    "--prefetch",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Cases read ahead (in a background thread) while one is inferred; 0: none.",
)
@click.option("--fold", default="0", show_default=True, help="nnU-Net fold (or 'all').")
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cuda.")
@executor_options
def command(
    model_dir,
    input_path,
    out_dir,
    mode,
    roi_source,
    step,
    inferer_file,
    no_skip,
    mirroring,
    batch,
    resampling,
    prefetch,
    fold,
    device,
    executor_name,
    ray_address,
):
    """Segment MRI/CT volumes; labels are written on each input's own grid.

    With --executor process or ray, each case is one task that reads, segments
    and writes it (on a Ray cluster the folders must be on storage all nodes see).
    """
    from flare_uda.cli import _checks
    from flare_uda.cli._executor import executor_spec
    from flare_uda.inference.files import predict_files, predict_files_on

    _checks.not_input(out_dir, "-o", input_path, model_dir)
    _checks.device(device)
    gpus = {"gpus_per_task": 1.0} if str(device).startswith("cuda") else {}
    engine = executor_spec(executor_name, ray_address, **gpus)
    if fold != "all" and not fold.isdigit():
        raise click.BadParameter(
            f"expected a fold number or 'all', got {fold!r}", param_hint="--fold"
        )
    if inferer_file is not None:
        inferer = inferer_from_file(inferer_file)
    else:
        try:
            inferer = build_inferer(
                mode, step, not no_skip, mirroring, batch, resampling, roi_source
            )
        except ValueError as err:
            raise click.UsageError(str(err)) from err
    files = input_files(input_path)
    ids = [case_id(p) for p in files]
    if len(set(ids)) != len(ids):
        raise click.UsageError(f"input case names collide after removing suffixes: {ids}")
    _checks.output_dir(out_dir, "-o")
    segmenter = load_segmenter(model_dir, fold=fold, device=device)
    outputs = [Path(out_dir) / f"{cid}.nii.gz" for cid in ids]
    if engine.name == "serial":  # in this process, reading ahead and writing behind
        predict_files(inferer, segmenter, files, outputs, prefetch=prefetch)
    else:
        predict_files_on(engine.build(), inferer, segmenter, files, outputs)
    click.echo(f"wrote {len(files)} label volume(s) to {out_dir}")
