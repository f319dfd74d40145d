"""A catalogue of bad inputs through the CLI: exit code, one line naming the problem, no traceback.

Exit code 2: the command line is wrong (option values, paths, outputs, devices);
1: an input's content is wrong or the work fails. Every entry runs in-process
(click's CliRunner, fast); a few also run as ``python -m flare_uda`` to see the
real stderr.
"""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from bad_inputs_world import READ_ONLY, build_world
from click.testing import CliRunner

from flare_uda.cli import main
from flare_uda.volume import Volume


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    yield from build_world(tmp_path_factory)


def P(*args: str) -> list[str]:
    """predict with the good model, input and output unless given."""
    opts = {"--model": "{w}/model", "-i": "{w}/images", "-o": "{o}"}
    extra = list(args)
    for key in list(opts):
        if key in extra:
            i = extra.index(key)
            opts[key] = extra[i + 1]
            del extra[i : i + 2]
    return ["predict", *[x for kv in opts.items() for x in kv], *extra]


def T(*args: str) -> list[str]:
    """train (tiny preset) on the good dataset unless given."""
    extra = list(args)
    base = [] if "--images" in extra else ["--images", "{w}/dataset"]
    return ["train", *base, "--out", "{o}", "--preset", "tiny", "--quiet", *extra]


def E(pred: str = "{w}/ref", ref: str = "{w}/ref", *args: str, out: str = "{o}") -> list[str]:
    return ["evaluate", "--pred", pred, "--ref", ref, "--out", out, "--no-plot", *args]


def A(inp: str = "{w}/dataset", out: str = "{o}", *args: str, model="{w}/translator") -> list[str]:
    return ["translate", "apply", "--model", model, "-i", inp, "-o", out, *args]


FIT = ["translate", "fit", "--source", "{w}/dataset", "--target", "{w}/dataset"]
DEMO = ["demo", "--preset", "tiny", "--quiet"]

# (id, argv, exit code, pattern in the one "Error:" line)
CATALOGUE = [
    # ---------------------------------------------------------------- predict: model folder
    ("model_missing", P("--model", "{w}/nope"), 2, r"--model.*does not exist"),
    ("model_empty", P("--model", "{w}/m_empty"), 1, r"m_empty, missing \['plan.json', "),
    ("model_no_weights", P("--model", "{w}/m_no_weights"), 1, r"missing \['weights.pt'\]"),
    ("weights_garbage", P("--model", "{w}/m_garbage_weights"), 1, r"weights.pt is not a readable"),
    ("weights_cut", P("--model", "{w}/m_cut_weights"), 1, r"weights.pt is not a readable torch"),
    ("plan_bad_json", P("--model", "{w}/m_bad_json"), 1, r"plan.json is not valid JSON"),
    ("plan_list", P("--model", "{w}/m_plan_list"), 1, r"plan.json must hold a JSON object, got l"),
    ("plan_keys", P("--model", "{w}/m_plan_key"), 1, r"plan.json does not hold a segmentation pl"),
    ("weights_other_net", P("--model", "{w}/m_other_net"), 1, r"m_other_net do not fit the netw"),
    ("nnunet_corrupt", P("--model", "{w}/nnunet"), 1, r"could not load the nnU-Net model fol"),
    ("fold_bad", P("--fold", "first"), 2, r"--fold.*expected a fold number or 'all', got 'first'"),
    # ---------------------------------------------------------------- predict: input volumes
    ("input_missing", P("-i", "{w}/nope"), 2, r"-i.*no such file or folder: .*nope"),
    ("input_empty_dir", P("-i", "{w}/empty_dir"), 2, r"no volumes .* found in .*empty_dir"),
    ("input_png", P("-i", "{w}/bad/scan.png"), 2, r"expected a volume file .*, got .*scan.png"),
    ("input_text", P("-i", "{w}/bad/text.nii.gz"), 1, r"text.nii.gz.*expected a NIfTI header"),
    ("input_zero_bytes", P("-i", "{w}/bad/empty.nii.gz"), 1, r"empty.nii.gz.*NIfTI header"),
    ("input_gz_text", P("-i", "{w}/bad/gztext.nii.gz"), 1, r"gztext.nii.gz.*is it a NIfTI file"),
    ("cut_nii_gz", P("-i", "{w}/bad/cut.nii.gz"), 1, r"cut.nii.gz: truncated or corrupt"),
    ("cut_mha", P("-i", "{w}/bad/cut.mha"), 1, r"cut.mha: truncated or corrupt"),
    ("cut_nrrd", P("-i", "{w}/bad/cut.nrrd"), 1, r"cut.nrrd: truncated or corrupt"),
    ("corrupt_nii_gz", P("-i", "{w}/bad/corrupt.nii.gz"), 1, r"corrupt.nii.gz: .*valid compressed"),
    ("image_2d", P("-i", "{w}/bad/flat.nii.gz"), 1, r"flat.nii.gz must be a 3D volume, got 2D"),
    ("image_4d", P("-i", "{w}/bad/movie.nii.gz"), 1, r"movie.nii.gz must be a 3D volume, got 4D"),
    ("image_vector", P("-i", "{w}/bad/rgb.mha"), 1, r"rgb.mha must be a scalar image"),
    ("nan_nifti", P("-i", "{w}/bad/nan.nii.gz"), 1, r"nan.nii.gz must hold finite values, got 1 N"),
    ("nan_mha", P("-i", "{w}/bad/nan.mha"), 1, r"nan.mha must hold finite values, got 1 NaN"),
    ("sheared", P("-i", "{w}/bad/sheared.mha"), 1, r"sheared.mha: direction must be orthonormal"),
    ("spacing_tiny", P("-i", "{w}/bad/tiny_spacing.mha"), 1, r"must have a spacing in \[0.01"),
    ("spacing_huge", P("-i", "{w}/bad/huge_spacing.mha"), 1, r"huge_spacing.mha must have a spac"),
    ("dicom_gap", P("-i", "{w}/dicom_gap"), 1, r"dicom_gap: expected evenly spaced slices"),
    ("dicom_cut_slice", P("-i", "{w}/dicom_cut"), 1, r"unreadable or foreign .*slice005.dcm"),
    # ---------------------------------------------------------------- predict: options, output
    ("out_is_file", P("-o", "{w}/afile.txt"), 2, r"-o.*expected an output folder, got the ex"),
    ("out_read_only", P("-o", "{w}/readonly"), 2, r"-o.*expected a writable folder, got .*rea"),
    ("out_under_ro", P("-o", "{w}/readonly/sub"), 2, r"expected a writable folder, got .*sub"),
    ("out_is_input", P("-o", "{w}/images"), 2, r"-o.*overlaps the input"),
    ("device_unknown", P("--device", "tpu9"), 2, r"--device.*expected a device like .*'tpu9'"),
    ("device_type", P("--device", "meta"), 2, r"--device.*expected a device like .*'meta'"),
    ("device_index", P("--device", "cuda:99"), 2, r"--device.*'cuda:99' asked for"),
    ("step_zero", P("--step", "0"), 2, r"step must be in \(0, 1\], got 0"),
    ("batch_zero", P("--batch", "0"), 2, r"sw_batch_size"),
    ("prefetch_negative", P("--prefetch", "-1"), 2, r"--prefetch.*-1 is not in the range"),
    ("mode_unknown", P("--mode", "fast"), 2, r"--mode.*'fast' is not one of"),
    # ---------------------------------------------------------------- train
    ("train_no_labels", T("--images", "{w}/plain"), 2, r"not an nnU-Net dataset .*--labels"),
    (
        "train_no_modality",
        T("--images", "{w}/plain", "--labels", "{w}/plain_labels"),
        2,
        r"needs --modality CT or MR",
    ),  # fmt: skip
    (
        "train_label_missing",
        T("--images", "{w}/plain", "--labels", "{w}/plain_labels", "--modality", "MR"),
        1,
        r"missing case ids \['c1'\]",
    ),  # fmt: skip
    (
        "train_float_labels",
        T("--images", "{w}/plain", "--labels", "{w}/float_labels", "--modality", "MR"),
        1,
        r"c0.nii.gz must hold integral values",
    ),  # fmt: skip
    (
        "train_odd_labels",
        T("--images", "{w}/plain", "--labels", "{w}/odd_labels", "--modality", "MR"),
        1,
        r"label c0.nii.gz .*99",
    ),  # fmt: skip
    ("train_cut_label", T("--images", "{w}/dataset_cut_label"), 1, r"c1.nii.gz: truncated or co"),
    ("train_dataset_json", T("--images", "{w}/dataset_bad_json"), 1, r"dataset.json is not an n"),
    ("train_manifest", T("--images", "{w}/bad_manifest"), 1, r"manifest .*json is not valid JSON"),
    ("train_preset", T("--preset", "quik"), 2, r"--preset.*Did you mean 'quick'"),
    ("train_device", T("--device", "gpu"), 2, r"--device.*expected a device like .*'gpu'"),
    ("train_val_cases", T("--val-cases", "2"), 2, r"--val-cases.*fewer than the 2 cases"),
    ("train_out_file", T("--out", "{w}/afile.txt"), 2, r"--out.*is a file"),
    ("train_out_ro", T("--out", "{w}/readonly"), 2, r"--out.*expected a writable folder"),
    # ---------------------------------------------------------------- evaluate
    ("eval_pred_missing", E("{w}/nope"), 2, r"--pred.*does not exist"),
    ("eval_ref_empty", E("{w}/ref", "{w}/empty_dir"), 1, r"expected label files .* found none"),
    ("eval_out_file", E(out="{w}/afile.txt"), 2, r"--out.*is a file"),
    ("eval_out_ro", E(out="{w}/readonly"), 2, r"--out.*expected a writable folder"),
    ("eval_label_map", E("{w}/ref", "{w}/ref", "--label-map", "amoss"), 2, r"Did you mean 'amos'"),
    ("eval_pred_cut", E("{w}/pred_cut"), 1, r"c1.nii.gz: truncated or corrupt"),
    ("eval_pred_float", E("{w}/float_labels"), 1, r"c0.nii.gz must hold integral values"),
    ("eval_workers", E("{w}/ref", "{w}/ref", "--workers", "0"), 2, r"--workers.*got 0"),
    # ---------------------------------------------------------------- translate
    ("apply_into_dataset", A(out="{w}/translated"), 2, r"-o.*expected an empty or new output"),
    (
        "apply_overwrite_foreign",
        A("{w}/dataset", "{w}/translated_foreign", "--overwrite"),
        2,
        r"--overwrite replaces only .*thesis.docx",
    ),  # fmt: skip
    ("apply_not_a_model", A(model="{w}/empty_dir"), 2, r"--model.*not a saved translator"),
    ("apply_cut_image", A("{w}/dataset_cut_image"), 1, r"c0_0000.nii.gz: truncated or corrupt"),
    ("apply_out_is_input", A(out="{w}/dataset"), 2, r"-o.*overlaps the input"),
    ("fit_method", [*FIT, "--out", "{o}", "--method", "asitt"], 2, r"Did you mean 'asit'"),
    ("fit_device", [*FIT, "--out", "{o}", "--device", "cuda:x"], 2, r"--device.*'cuda:x'"),
    ("fit_out_file", [*FIT, "--out", "{w}/afile.txt"], 2, r"--out.*is a file"),
    # ---------------------------------------------------------------- demo
    (
        "demo_yaml",
        [*DEMO, "--config", "{w}/configs/broken.yaml", "--out", "{o}"],
        2,
        r"--config.*valid YAML in .*broken.yaml, got a syntax error.* at line 3",
    ),  # fmt: skip
    (
        "demo_binary_config",
        [*DEMO, "--config", "{w}/configs/binary.yaml", "--out", "{o}"],
        2,
        r"--config.*expected a YAML text file, got .*binary.yaml",
    ),  # fmt: skip
    (
        "demo_own_config",
        [*DEMO, "--config", "{w}/run/config.yaml", "--out", "{w}/run"],
        2,
        r"would overwrite the input config .*run/config.yaml",
    ),  # fmt: skip
    ("demo_device", [*DEMO, "--device", "cuda:1:2", "--out", "{o}"], 2, r"--device"),
    ("demo_out_file", [*DEMO, "--out", "{w}/afile.txt"], 2, r"--out.*is a file"),
    ("demo_out_ro", [*DEMO, "--out", "{w}/readonly"], 2, r"--out.*expected a writable folder"),
    ("demo_preset", ["demo", "--preset", "quik"], 2, r"Did you mean 'quick'"),
    # ---------------------------------------------------------------- phantom, efficiency
    (
        "phantom_nonempty",
        ["phantom", "--preset", "tiny", "--out", "{w}/nonempty"],
        2,
        r"not empty; choose an empty folder or pass --overwrite",
    ),  # fmt: skip
    ("phantom_preset", ["phantom", "--preset", "huge", "--out", "{o}"], 2, r"--preset.*huge"),
    (
        "phantom_out_ro",
        ["phantom", "--preset", "tiny", "--out", "{w}/readonly"],
        2,
        r"expected a writable folder",
    ),  # fmt: skip
    ("phantom_n_ct", ["phantom", "--n-ct", "0", "--out", "{o}"], 2, r"--n-ct.*0 is not in"),
    (
        "efficiency_json_dir",
        ["efficiency", "--json", "{w}", "--", "true"],
        2,
        r"--json.*expected a file path, got the folder",
    ),  # fmt: skip
]


def skip_without_read_only(argv: list[str], world) -> None:
    if any("readonly" in a for a in argv) and not READ_ONLY[world]:
        pytest.skip("cannot make a folder read-only here (root without chattr)")


def run_cli(argv: list[str], world, tmp_path):
    args = [a.format(w=world, o=tmp_path / "out") for a in argv]
    return CliRunner().invoke(main, args)


def error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def test_catalogue_is_large_and_unique():
    ids = [entry[0] for entry in CATALOGUE]
    assert len(ids) >= 40 and len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    "argv, code, pattern", [e[1:] for e in CATALOGUE], ids=[e[0] for e in CATALOGUE]
)
def test_bad_input(world, tmp_path, argv, code, pattern):
    skip_without_read_only(argv, world)
    result = run_cli(argv, world, tmp_path)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    assert result.exit_code == code, result.output
    assert re.search(pattern, error_line(result.stderr)), result.stderr


SUBPROCESS = ["cut_nii_gz", "weights_garbage", "demo_yaml"]  # a damaged input, model, config


@pytest.mark.parametrize("name", SUBPROCESS)
def test_real_stderr_has_no_traceback(world, tmp_path, name):
    argv, code, pattern = next(e[1:] for e in CATALOGUE if e[0] == name)
    skip_without_read_only(argv, world)
    args = [a.format(w=world, o=tmp_path / "out") for a in argv]
    proc = subprocess.run(
        [sys.executable, "-m", "flare_uda", *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.search(pattern, error_line(proc.stderr))


def test_debug_variable_shows_the_traceback(world, tmp_path, monkeypatch):
    monkeypatch.setenv("FLARE_UDA_DEBUG", "1")
    result = run_cli(P("-i", "{w}/bad/cut.nii.gz"), world, tmp_path)
    assert isinstance(result.exception, RuntimeError)


def test_an_internal_error_is_one_line_that_asks_for_a_report(world, tmp_path, monkeypatch):
    import flare_uda.cli.predict as predict

    def broken(*args, **kwargs):
        raise AttributeError("'NoneType' object has no attribute 'shape'")

    monkeypatch.setattr(predict, "build_inferer", broken)
    result = run_cli(P(), world, tmp_path)
    assert result.exit_code == 1
    line = error_line(result.stderr)
    assert "internal error, please report it: AttributeError" in line
    assert "FLARE_UDA_DEBUG=1" in line


def test_volume_api_errors_do_not_depend_on_the_cli():
    """The same checks hold for library users (here: a sheared Volume)."""
    with pytest.raises(ValueError, match="orthonormal"):
        Volume(np.zeros((2, 2, 2)), direction=[[1, 0.3, 0], [0, 1, 0], [0, 0, 1]])
