"""Every bad input of `adapt` fails before the first stage, saying what was expected and got.

Command-line mistakes exit with 2, bad data with 1; one ``Error:`` line, no traceback,
and no stage folder is ever made.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from adapt_support import write_user_folders
from click.testing import CliRunner
from io_support import write_dicom_series

from flare_uda.cli import main
from flare_uda.data.io import read_label, read_volume, write_volume
from flare_uda.pipeline.adapt_inputs import AdaptArgumentError, prepare


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict[str, Path]:
    return write_user_folders(tmp_path_factory.mktemp("adapt_errors"))


@pytest.fixture
def user(base, tmp_path) -> dict[str, Path]:
    """A private copy of the user folders, free to damage."""
    out = {}
    for name, path in base.items():
        out[name] = tmp_path / path.name
        (shutil.copytree if path.is_dir() else shutil.copy)(path, out[name])
    return out


def args(user, *extra, source=None, target=None, out=None) -> list[str]:
    sources = source or [str(user["ct_nnunet"]), f"{user['ct_plain']}:amos"]
    return [
        "adapt",
        *[a for s in sources for a in ("--source", s)],
        "--target", str(target or user["mr"]),
        "--out", str(out or user["mr"].parent / "run"),
        "--preset", "tiny", "--device", "cpu", "--quiet",
        *extra,
    ]  # fmt: skip


def fails(argv: list[str], code: int, *phrases: str) -> str:
    res = CliRunner().invoke(main, argv)
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output and res.stderr.count("Error") == 1, res.output
    for phrase in phrases:
        assert phrase in res.stderr, res.stderr
    out = Path(argv[argv.index("--out") + 1])
    assert not (out / "stages").exists()
    return res.stderr


def test_no_labels_in_any_source(user):
    shutil.rmtree(user["ct_nnunet"] / "labelsTr")
    shutil.rmtree(user["ct_plain"] / "labels")
    (user["ct_plain"] / "ct_002_label.nii.gz").unlink()
    fails(args(user), 1, "no labels in any source", "expected label files in labels/")


def test_a_source_image_without_its_label(user):
    (user["ct_plain"] / "ct_002_label.nii.gz").unlink()
    fails(args(user), 1, "1 of 2 images have no label (['ct_002'])")


def test_a_ct_target_is_refused_saying_how_it_was_seen(user):
    fails(args(user, target=user["ct_plain"]), 1, "looks like CT, not MRI", "Hounsfield units")


def test_a_ct_dicom_target_is_recognised_by_its_modality_tag(user, tmp_path):
    target = tmp_path / "dicom_target"
    target.mkdir()
    image = read_volume(user["mr"] / "mr_t1_000.nii.gz")  # MR intensities, CT header
    write_dicom_series(target / "scan", image.array, image.spacing, image.origin)
    fails(args(user, target=target), 1, "its DICOM Modality tag (0008,0060) is 'CT'")


def test_a_ct_nnunet_target_is_recognised_by_its_channel(user):
    fails(args(user, target=user["ct_nnunet"]), 1, "dataset.json names the channel 'CT'")


def test_an_unreadable_target_file(user):
    path = user["mr"] / "mr_t2_001.nii.gz"
    path.write_bytes(path.read_bytes()[:200])
    fails(args(user), 1, "--target", "mr_t2_001.nii.gz")


def test_mixed_label_maps_in_one_folder(user):
    flare = read_label(user["ct_nnunet"] / "labelsTr" / "ct_000.nii.gz")
    shutil.copy(user["ct_nnunet"] / "imagesTr" / "ct_000_0000.nii.gz", user["ct_plain"])
    write_volume(flare, user["ct_plain"] / "labels" / "ct_000.nii.gz", is_label=True)
    fails(args(user, source=[str(user["ct_plain"])]), 1, "mix label maps", "look like amos/btcv")


def test_a_declared_map_that_the_labels_contradict(user):
    stderr = fails(args(user, source=[f"{user['ct_nnunet']}:amos"]), 1, "declared 'amos' map")
    assert "value 1, lies on the patient's right like a liver" in stderr


def test_labels_of_another_map_need_the_map_named(user):
    fails(args(user, source=[str(user["ct_plain"])]), 1, "no label map given", "ct_plain:amos")


def test_an_unknown_label_map_name(user):
    fails(args(user, source=[f"{user['ct_plain']}:amoss"]), 2, "Did you mean 'amos'")


@pytest.mark.parametrize("where", ["inside", "equal", "around"])
def test_an_out_folder_overlapping_an_input(user, where):
    out = {
        "inside": user["mr"] / "run",
        "equal": user["mr"],
        "around": user["mr"].parent,
    }[where]
    fails(args(user, out=out), 2, "overlaps the input", "--out")
    assert not (user["mr"] / "run").exists()


def test_a_config_inside_out_is_never_overwritten(user):
    out = user["mr"].parent / "run"
    out.mkdir()
    (out / "config.yaml").write_text("self_training: {rounds: 3}\n")
    argv = args(user, "--config", str(out / "config.yaml"), out=out)
    fails(argv, 2, "would overwrite the input config")
    assert (out / "config.yaml").read_text() == "self_training: {rounds: 3}\n"


def test_target_cases_without_sequence_names(user):
    fails(args(user), 2, "4 of 4 target cases have no sequence name", "--sequences auto")


def test_unknown_sequence_names(user):
    text = user["sequences"].read_text().replace("T1", "T1w").replace("T2", "T2w")
    user["sequences"].write_text(text)
    stderr = fails(args(user, "--sequences", str(user["sequences"])), 2, "unknown sequence names")
    assert "mdm.better is 'T1'" in stderr and "['T1w', 'T2w']" in stderr


def test_a_sequence_file_naming_an_unknown_case(user):
    text = user["sequences"].read_text().replace("mr_t2_001", "mr_t2_01")
    user["sequences"].write_text(text)
    fails(args(user, "--sequences", str(user["sequences"])), 2, "Did you mean 'mr_t2_001'")


def test_a_sequence_file_leaving_out_a_case(user):
    lines = user["sequences"].read_text().splitlines()[:-1]
    user["sequences"].write_text("\n".join(lines) + "\n")
    argv = args(user, "--sequences", str(user["sequences"]))
    fails(argv, 2, "expected a sequence for every target case, 1 have none: ['mr_t2_001']")


def test_target_labels_naming_no_target_case(user):
    (user["mr_labels"] / "mr_t1_000_label.nii.gz").rename(user["mr_labels"] / "x_label.nii.gz")
    argv = args(
        user, "--sequences", str(user["sequences"]), "--target-labels", str(user["mr_labels"])
    )
    fails(argv, 1, "labels ['x'] name no target case")


def test_a_label_off_its_image_grid(user):
    path = user["ct_plain"] / "ct_002_label.nii.gz"
    label = read_volume(path)
    write_volume(replace(label, origin=np.add(label.origin, (0, 0, 200.0))), path, is_label=True)
    fails(args(user), 1, "is not on its image's grid")


def test_a_case_id_in_two_sources(user, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(user["ct_nnunet"], copy)
    argv = args(user, source=[str(user["ct_nnunet"]), str(copy)])
    fails(argv, 1, "case id 'ct_000' is in --source", "expected unique case ids")


def test_a_missing_folder_is_a_usage_error(user):
    fails(args(user, source=[str(user["mr"].parent / "nope")]), 2, "expected a folder, got")


def test_the_api_raises_the_same_errors(user):
    with pytest.raises(AdaptArgumentError, match="overlaps the input") as err:
        prepare(user["ct_nnunet"], user["mr"], out=user["mr"] / "run", preset="tiny")
    assert err.value.option == "--out"
    with pytest.raises(ValueError, match="looks like CT, not MRI"):
        prepare(user["ct_nnunet"], user["ct_plain"], out=user["mr"].parent / "r", preset="tiny")


def test_a_sequence_dict_is_checked_like_a_file(user):
    out = user["mr"].parent / "r"
    sources = [user["ct_nnunet"], f"{user['ct_plain']}:amos"]
    with pytest.raises(AdaptArgumentError, match="1 have none: \\['mr_t2_001'\\]") as err:
        names = {"mr_t1_000": "T1", "mr_t1_001": "T1", "mr_t2_000": "T2"}
        prepare(sources, user["mr"], out=out, sequences=names, preset="tiny")
    assert err.value.option == "--sequences"
    names = {"mr_t1_000": "T1", "mr_t1_001": "T1", "mr_t2_000": "T2", "mr_t2_001": "T2"}
    prepared = prepare(sources, user["mr"], out=out, sequences=names, preset="tiny")
    assert [c.sequence for c in prepared.inputs.mr.cases] == ["T1", "T1", "T2", "T2"]
    assert prepared.settings == ("asit_mdm_plf",) and not (out / "stages").exists()


def test_a_bad_config_or_preset_is_a_usage_error(user, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("self_training: {rounds: 1}\n")
    fails(args(user, "--config", str(bad)), 2, "Invalid value for --config", "rounds must be")
    bad.write_text("mdm: {registrar: {name: torch, options: {shrink_factor: [4]}}}\n")
    fails(args(user, "--config", str(bad)), 2, "Did you mean 'shrink_factors'")
    argv = args(user)
    argv[argv.index("--preset") + 1] = "quik"
    fails(argv, 2, "unknown pipeline preset 'quik'. Did you mean 'quick'")


def test_a_case_labelled_in_two_target_label_folders(user, tmp_path):
    again = tmp_path / "again"
    again.mkdir()
    shutil.copy(user["mr_labels"] / "mr_t1_000_label.nii.gz", again)
    labels = ("--target-labels", str(user["mr_labels"]), "--target-labels", str(again))
    argv = args(user, "--sequences", str(user["sequences"]), *labels)
    fails(argv, 2, "cases ['mr_t1_000'] have labels in more than one --target-labels folder")


def test_target_labels_in_two_folders_with_their_own_label_maps(user, tmp_path):
    """A CHAOS-map folder beside a FLARE one: both cases scored, each on its own organs."""
    chaos = tmp_path / "chaos_labels"
    chaos.mkdir()
    moved = chaos / "mr_t2_000_label.nii.gz"
    (user["mr_labels"] / "mr_t2_000_label.nii.gz").rename(moved)
    flare = read_label(moved)
    as_chaos = np.zeros_like(flare.array)  # CHAOS: 1 liver, 2 right kidney, 3 left kidney, 4 spleen
    for flare_value, chaos_value in ((1, 1), (2, 2), (13, 3), (3, 4)):
        as_chaos[flare.array == flare_value] = chaos_value
    write_volume(replace(flare, array=as_chaos), moved, is_label=True)
    prepared = prepare(
        [user["ct_nnunet"], f"{user['ct_plain']}:amos"],
        user["mr"],
        out=tmp_path / "run",
        sequences=user["sequences"],
        target_labels=[user["mr_labels"], f"{chaos}:chaos"],
        preset="tiny",
    )
    scored = {c.case_id: c for c in prepared.scored}
    assert "mr_t2_000" in scored and "mr_t1_000" in scored
    assert sorted(np.unique(scored["mr_t2_000"].label.array)) == sorted(
        np.unique(flare.array[np.isin(flare.array, (0, 1, 2, 3, 13))])
    )
    assert tuple(scored["mr_t2_000"].annotated) == (1, 2, 3, 13)
    assert tuple(scored["mr_t1_000"].annotated) == tuple(range(1, 14))


def test_an_unknown_or_translated_method_is_a_usage_error(user):
    fails(args(user, "--method", "synth_mdm_plv"), 2, "Did you mean 'synth_mdm_plf'")
    # a setting that predicts through a translator's space gives no model of MR images
    fails(args(user, "--method", "asit"), 2, "does not give a model of MR intensities")
