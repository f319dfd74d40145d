"""``flare-uda translate fit|apply``: train a translator, then translate volumes with it."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from flare_uda.cli import _checks

METHODS_HELP = "Translator name: identity, cyclegan, asit or a plug-in's."


def _image_files(root: Path) -> list[Path]:
    """Image files of a dataset (nnU-Net raw layout) or of a plain folder of volumes."""
    from flare_uda.data.datasets import FILE_ENDING, SPLITS
    from flare_uda.data.io import list_volume_files

    if not root.is_dir():
        raise click.BadParameter(f"expected a folder, got {root}")
    dirs = [root / SPLITS[s][0] for s in SPLITS if (root / SPLITS[s][0]).is_dir()]
    if dirs:
        ending = f"_0000{FILE_ENDING}"
        files = [p for d in dirs for p in list_volume_files(d) if p.name.endswith(ending)]
    else:
        files = list_volume_files(root)
    if not files:
        raise click.BadParameter(f"no volumes found in {root}")
    return files


def _write_dataset_files(root: Path, out_root: Path, modality: str) -> None:
    """dataset.json and manifest.json of a translated dataset: same cases, new modality."""
    from flare_uda._atomic import write_json
    from flare_uda.data.datasets import dataset_json, read_manifest

    manifest = read_manifest(root)
    for meta in manifest.values():
        meta.update(modality=modality, sequence=None)
    n_train = sum(1 for m in manifest.values() if m["split"] == "train" and m["has_label"])
    write_json(out_root / "dataset.json", dataset_json(modality, n_train))
    write_json(out_root / "manifest.json", manifest)


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _check_out(out: str, hint: str, *inputs: str) -> None:
    _checks.not_input(out, hint, *inputs)


def _skip_temporaries(folder: str, names: list[str]) -> list[str]:
    from flare_uda._atomic import is_hidden_or_temporary

    return [n for n in names if is_hidden_or_temporary(n)]


DATASET_ENTRIES = {"imagesTr", "imagesTs", "labelsTr", "labelsTs", "dataset.json", "manifest.json"}
"""What a translated dataset holds; ``--overwrite`` replaces only such a folder."""


def _check_replaceable(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty output without ``--overwrite``, and one that holds other things."""
    from flare_uda._atomic import is_hidden_or_temporary
    from flare_uda.data.io import is_volume_file

    entries = [p for p in out.iterdir() if not is_hidden_or_temporary(p)] if out.is_dir() else []
    if not entries:
        return
    if not overwrite:
        raise click.BadParameter(
            f"expected an empty or new output folder, got {out} holding {len(entries)} "
            "entries; pass --overwrite to replace it",
            param_hint="-o",
        )
    foreign = sorted(
        p.name for p in entries if p.name not in DATASET_ENTRIES and not is_volume_file(p)
    )
    if foreign:
        raise click.BadParameter(
            f"--overwrite replaces only an earlier output of 'translate apply' (volumes, "
            f"{sorted(DATASET_ENTRIES)}), but {out} also holds {foreign[:5]}",
            param_hint="-o",
        )


@click.group("translate")
def command() -> None:
    """CT <-> MR image translation (CycleGAN, anatomy-space ASIT, identity)."""


@command.command("fit")
@click.option(
    "--source",
    "source",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Source (CT) dataset: nnU-Net raw layout or a folder of volumes.",
)
@click.option(
    "--target",
    "target",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Target (MR) dataset: nnU-Net raw layout or a folder of volumes.",
)
@click.option("--method", default="asit", show_default=True, help=METHODS_HELP)
@click.option(
    "--preset",
    default=None,
    help="A named option set of the translator (cyclegan, asit: quick, their defaults, or "
    "paper for a GPU).",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False),
    help="Model folder to write (training checkpoints go to OUT/checkpoints).",
)
@click.option(
    "--iterations",
    type=click.IntRange(min=1),
    default=None,
    help="Override the number of training iterations (translators that train).",
)
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Override the seed.")
@click.option("--device", default=None, help="cuda or cpu (default: cuda when available).")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="torch CPU threads (default: torch's; 1 is fastest on a busy machine).",
)
def fit(source, target, method, preset, out, iterations, seed, device, threads) -> None:
    """Learn SOURCE <-> TARGET translation and save it to OUT."""
    _set_threads(threads)
    from flare_uda.data.datasets import load_cases
    from flare_uda.translation import TRANSLATORS

    _check_out(out, "--out", source, target)
    _checks.device(device)
    _checks.output_dir(out, "--out")
    try:
        klass = TRANSLATORS.get(method)
    except KeyError as err:
        raise click.BadParameter(str(err), param_hint="--method") from None
    options = {k: v for k, v in (("iterations", iterations), ("seed", seed)) if v is not None}
    runtime = {"work_dir": Path(out) / "checkpoints", "device": device}
    try:
        translator = (
            klass.from_preset(preset, **options, **runtime)
            if preset is not None
            else klass(**options, **runtime)
        )
    except (KeyError, ValueError, TypeError) as err:
        hint = "--preset" if "preset" in str(err) else "--iterations/--seed"
        raise click.BadParameter(str(err), param_hint=hint) from None
    src, tgt = load_cases(source), load_cases(target)
    click.echo(f"fitting {method} on {len(src)} source and {len(tgt)} target cases")
    translator.fit(src, tgt).save(out)
    click.echo(f"saved {method} translator to {out}")


@command.command("apply")
@click.option(
    "--model",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="A folder written by 'translate fit'.",
)
@click.option(
    "-i",
    "--input",
    "inp",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Volumes to translate: nnU-Net raw layout or a folder of volumes.",
)
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(file_okay=False),
    help="Output folder: same relative names; a dataset's labels are copied and its "
    "manifest rewritten with the new modality.",
)
@click.option(
    "--direction",
    type=click.Choice(["to_target", "to_source"]),
    default="to_target",
    show_default=True,
    help="to_target: CT -> fake MR; to_source: MR -> fake CT.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="torch CPU threads (default: torch's).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace a non-empty OUTPUT (only an earlier output of this command).",
)
def apply(model, inp, out, direction, threads, overwrite) -> None:
    """Translate every volume of INPUT with MODEL into OUTPUT, same names and geometry.

    OUTPUT is written beside, then renamed into place: it is never merged into.
    """
    _set_threads(threads)
    from tqdm.auto import tqdm

    from flare_uda._atomic import replace_dir
    from flare_uda.data.io import WRITE_SUFFIXES, read_volume, write_volume
    from flare_uda.translation import Translator

    root, out_root = Path(inp), Path(out)
    _check_out(out, "-o", inp, model)
    _check_replaceable(out_root, overwrite)
    _checks.output_dir(out_root.parent, "-o")
    try:
        translator = Translator.load(model)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--model") from None
    files = _image_files(root)
    with replace_dir(out_root) as new:
        for path in tqdm(files, desc=f"translate {direction}"):
            rel = path.relative_to(root)
            if not path.name.lower().endswith(WRITE_SUFFIXES):
                rel = rel.with_name(path.name.split(".")[0] + ".nii.gz")
            result = getattr(translator, direction)(read_volume(path))
            write_volume(result, new / rel)
        for labels in ("labelsTr", "labelsTs"):
            if (root / labels).is_dir():
                shutil.copytree(root / labels, new / labels, ignore=_skip_temporaries)
        if (root / "manifest.json").exists():
            _write_dataset_files(root, new, "MR" if direction == "to_target" else "CT")
    click.echo(f"wrote {len(files)} translated volumes to {out}")
