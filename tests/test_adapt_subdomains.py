"""MR sub-domains: sequence files, DICOM headers, and `--sequences auto` recovering T1/T2."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from adapt_support import write_user_folders
from click.testing import CliRunner

from flare_uda.cli import main
from flare_uda.data.modality import looks_like_ct, sequence_from_dicom
from flare_uda.data.phantom import generate_cohort
from flare_uda.pipeline.sequences import SequenceError, read_sequence_map
from flare_uda.pipeline.subdomains import (
    SubDomainOptions,
    case_features,
    cluster_cases,
    group_weights,
    implausibility,
    rank_clusters,
)
from flare_uda.volume import Volume


@pytest.mark.parametrize(
    ("preset", "n_mr", "seed"), [("tiny", 4, 0), ("tiny", 8, 1), ("quick", 4, 2)]
)
def test_auto_clusters_recover_t1_and_t2_on_the_phantom(preset, n_mr, seed):
    _, mr = generate_cohort(preset, 0, n_mr, seed)
    clusters = cluster_cases(case_features(mr))
    pairs = {(c.sequence, clusters[c.case_id]) for c in mr}
    assert pairs in ({("T1", "auto1"), ("T2", "auto2")}, {("T1", "auto2"), ("T2", "auto1")})
    assert clusters[min(clusters)] == "auto1"  # named after the first case id


def test_the_group_that_splits_the_cohort_cleanly_weighs_most():
    rng = np.random.default_rng(0)
    noise = np.r_[rng.normal(0, 0.1, 5), rng.normal(3, 0.1, 5)]  # two tight clusters
    features = {
        f"c{i}": {
            "noise": noise[i],
            "texture": rng.normal(),
            **dict.fromkeys(("q25", "q99", "skewness", "cv"), 0.0),
        }
        | {"q25": rng.normal()}
        for i in range(10)
    }
    weights = group_weights(features)
    assert weights["noise"] > 5 * max(weights["texture"], weights["histogram"])
    clusters = cluster_cases(features)
    assert {clusters[f"c{i}"] for i in range(5)} == {"auto1"}
    assert {clusters[f"c{i}"] for i in range(5, 10)} == {"auto2"}
    assert group_weights(features, SubDomainOptions({"noise": 0.0}))["noise"] == 0.0


@pytest.mark.realdata
def test_auto_splits_the_shared_real_mr_by_scanner_sequence(shared_data, tmp_path):
    from flare_uda.data.user_data import read_target

    for name in (
        "totalseg_mr_sm_image.nii.gz",
        *[f"chaos_t2_{n}_image.nii.gz" for n in (1, 2, 3, 5, 8)],
    ):
        found = next(shared_data.glob(f"mr/**/{name}"))
        (tmp_path / name).symlink_to(found)
    cases, _ = read_target(tmp_path)
    clusters = cluster_cases(case_features(cases))
    assert clusters["totalseg_mr_sm"] != clusters["chaos_t2_1"]
    assert len({clusters[f"chaos_t2_{n}"] for n in (1, 2, 3, 5, 8)}) == 1


def test_clusters_need_two_cases_and_valid_weights():
    with pytest.raises(ValueError, match="needs at least two target cases to split, got 1"):
        cluster_cases({"a": dict.fromkeys(("noise", "texture"), 0.0)})
    with pytest.raises(ValueError, match="weights must map feature groups"):
        SubDomainOptions({"colour": 1.0})
    with pytest.raises(ValueError, match="not all 0"):
        SubDomainOptions({"noise": 0.0, "texture": 0, "histogram": 0})


def blob(shape, box, value=1, spacing=(1.0, 1.0, 1.0)) -> Volume:
    array = np.zeros(shape, np.uint8)
    array[box] = value
    return Volume(array, spacing)


def test_implausibility_is_the_mean_absolute_log_volume_ratio():
    label = blob((4, 10, 10), np.s_[:, :5, :5], 1)  # 100 mm^3 of organ 1, none of organ 2
    mean = {1: 50.0, 2: 10.0}
    expected = (math.log(2.0) + abs(math.log(0.05))) / 2  # organ 2 absent: ratio clipped
    assert implausibility(label, mean) == pytest.approx(expected)


def test_the_stable_plausible_cluster_is_chosen():
    steady = blob((4, 10, 10), np.s_[:, :5, :5])  # 100 voxels, the same in both rounds
    moved = blob((4, 10, 10), np.s_[:, 5:, 5:])
    rounds = [
        {"a": steady, "b": steady, "c": steady, "d": steady},
        {"a": steady, "b": steady, "c": moved, "d": moved},
    ]
    clusters = {"a": "auto1", "b": "auto1", "c": "auto2", "d": "auto2"}
    ranking = rank_clusters(clusters, rounds, {1: 100.0})
    assert (ranking["better"], ranking["worse"]) == ("auto1", "auto1".replace("1", "2"))
    assert ranking["clusters"]["auto1"]["uncertainty"] == 0.0
    assert ranking["clusters"]["auto2"]["uncertainty"] == pytest.approx(200 / 100)  # eq. 7
    assert ranking["cases"]["c"]["cluster"] == "auto2" and not ranking["all_empty"]


def test_plausibility_breaks_a_stability_tie_and_empty_labels_are_flagged():
    small, right = blob((4, 10, 10), np.s_[:1, :1, :5]), blob((4, 10, 10), np.s_[:, :5, :5])
    clusters = {"a": "auto1", "b": "auto2"}
    ranking = rank_clusters(clusters, [{"a": small, "b": right}] * 2, {1: 100.0})
    assert ranking["better"] == "auto2"  # same stability, volume 100 = the CT mean
    empty = blob((4, 10, 10), np.s_[:0])
    ranking = rank_clusters(clusters, [{"a": empty, "b": empty}] * 2, {1: 100.0})
    assert ranking["all_empty"] and ranking["better"] == "auto1"


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"series_description": "T2 SPIR"}, "T2"),
        ({"series_description": "t1_vibe_fs_tra"}, "T1"),
        ({"protocol_name": "HASTE cor"}, "T2"),
        ({"repetition_time": "4.2", "echo_time": "2.1"}, "T1"),
        ({"repetition_time": "2200", "echo_time": "90"}, "T2"),
        ({"repetition_time": "1200", "echo_time": "45"}, None),
        ({"series_description": "t1 t2 map"}, None),
        ({}, None),
    ],
)
def test_sequence_names_from_dicom_headers(tags, expected):
    assert sequence_from_dicom(tags) == expected


def test_ct_is_recognised_by_hounsfield_air_or_its_modality_tag():
    ct = np.full((4, 8, 8), -1000.0)
    ct[:, 2:6, 2:6] = 40.0
    assert "Hounsfield units (75 % of voxels below -800" in looks_like_ct(ct)
    assert looks_like_ct(np.abs(ct) / 10) is None  # non-negative magnitudes: MR
    assert looks_like_ct(ct, {"modality": "MR"}) is None
    assert "Modality tag" in looks_like_ct(np.zeros(3), {"modality": "CT"})


@pytest.mark.parametrize(
    "text",
    [
        "case,sequence\na,T1\nb,T2\n",
        "Case;Sequence\na;T1\nb;T2\n",
        '{"a": "T1", "b": "T2"}',
        '[{"case": "a", "sequence": "T1"}, {"case": "b", "sequence": "T2"}]',
    ],
)
def test_sequence_files_csv_or_json(tmp_path, text):
    path = tmp_path / ("s.json" if text[0] in "{[" else "s.csv")
    path.write_text(text)
    assert read_sequence_map(path, ["a", "b"]) == {"a": "T1", "b": "T2"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,kind\na,T1\n", "expected a CSV header with columns case and sequence"),
        ("case,sequence\na,T1\na,T2\n", "case 'a' is listed twice"),
        ("case,sequence\na,\nb,T2\n", "expected a case id and a sequence name"),
        ('{"a": "T1", "b": 2}', "expected a case id and a sequence name"),
        ('[{"case": "a"}]', "one lacks 'sequence'"),
        ("[1, 2]", "expected a JSON object"),
        ('{"a": "T1"', "expected CSV or JSON text"),
    ],
)
def test_bad_sequence_files(tmp_path, text, message):
    path = tmp_path / "s.txt"
    path.write_text(text)
    with pytest.raises(SequenceError, match=message):
        read_sequence_map(path, ["a", "b"])


def test_adapt_auto_reports_the_clusters_and_the_choice(tmp_path):
    folders = write_user_folders(tmp_path, n_mr=4, seed=0)
    out = tmp_path / "run"
    argv = [
        "adapt", "--source", str(folders["ct_nnunet"]), "--source", f"{folders['ct_plain']}:amos",
        "--target", str(folders["mr"]), "--sequences", "auto", "--preset", "tiny",
        "--device", "cpu", "--quiet", "--out", str(out),
    ]  # fmt: skip
    res = CliRunner().invoke(main, argv)
    assert res.exit_code == 0, res.output + repr(res.exception)
    chosen = json.loads((out / "subdomains.json").read_text())
    clusters = {c: v["cluster"] for c, v in chosen["cases"].items()}
    assert {(c[3:5], name) for c, name in clusters.items()} in (
        {("t1", "auto1"), ("t2", "auto2")},
        {("t1", "auto2"), ("t2", "auto1")},
    )
    assert {chosen["better"], chosen["worse"]} == {"auto1", "auto2"}
    assert f"sub-domains: {chosen['better']} better" in res.output
    report = (out / "report.md").read_text()
    assert f"**Chosen:** `{chosen['better']}` is the better domain" in report
    assert "group weights, by how cleanly each splits the scans: noise" in report
    assert "(subdomains.png)" in report and (out / "subdomains.png").is_file()
    stages = {p.name.split("-")[0] for p in (out / "stages").iterdir()}
    assert {"subdomains", "train_probe", "predict_probe", "mdm", "train_final"} <= stages
    mdm = next((out / "stages").glob("mdm-*"))
    assert json.loads((mdm / "DONE.json").read_text())["transfers"]  # MDM ran on the clusters


def test_dicom_targets_take_their_sequence_from_the_headers(tmp_path):
    from io_support import write_dicom_series

    from flare_uda.data.user_data import read_target

    _, mr = generate_cohort("tiny", 0, 2, 0)
    descriptions = {"mr_t1_000": "t1_vibe_opp", "mr_t2_000": "T2 HASTE tra"}
    for case in mr:
        tags = {"0008|0060": "MR", "0008|103e": descriptions[case.case_id]}
        image = case.image
        write_dicom_series(
            tmp_path / case.case_id, image.array, image.spacing, image.origin, tags=tags
        )
    cases, report = read_target(tmp_path)
    assert {c.case_id: c.sequence for c in cases} == {"mr_t1_000": "T1", "mr_t2_000": "T2"}
    assert report.layout == "plain" and report.cases == ["mr_t1_000", "mr_t2_000"]
