"""Pipeline helpers: empty pseudo-labels are left out of training, and all-empty is an error."""

from __future__ import annotations

import numpy as np
import pytest

from flare_uda.pipeline.presets import get_preset
from flare_uda.pipeline.uda import NoPseudoLabels, UDAPipeline, usable
from flare_uda.volume import Case, Volume


def _case(cid: str, fg: bool) -> Case:
    img = Volume(np.zeros((4, 8, 8), np.float32))
    lab = np.zeros((4, 8, 8), np.uint8)
    lab[1:3, 2:5, 2:5] = 1 if fg else 0
    return Case(cid, img, Volume(lab), "MR", "T1")


def test_usable_drops_empty_labels():
    cases = [_case("a", True), _case("b", False), _case("c", True)]
    assert [c.case_id for c in usable(cases, "MDM")] == ["a", "c"]


def test_usable_all_empty_raises():
    with pytest.raises(NoPseudoLabels, match="all 2 pseudo-labels are empty"):
        usable([_case("a", False), _case("b", False)], "MDM")


def test_pipeline_input_errors(tmp_path):
    pipe = UDAPipeline(get_preset("tiny"), tmp_path)
    with pytest.raises(ValueError, match="expected CT, MR and MR-test cases"):
        pipe.run([], [_case("m", True)], [_case("t", True)])
    unlabelled = _case("ct", True).with_label(None)
    with pytest.raises(ValueError, match="need labels"):
        pipe.run([unlabelled], [_case("m", True)], [_case("t", True)])
    with pytest.raises(TypeError, match="UDAConfig"):
        UDAPipeline({"data": {}}, tmp_path)


def test_pipeline_device_is_resolved_and_checked(tmp_path):
    import torch

    pipe = UDAPipeline(get_preset("tiny"), tmp_path, progress=False, device="cpu")
    assert pipe.device == torch.device("cpu")
    with pytest.raises(ValueError, match="expected a device like"):
        UDAPipeline(get_preset("tiny"), tmp_path, progress=False, device="tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch sees no CUDA device"):
            UDAPipeline(get_preset("tiny"), tmp_path, progress=False, device="cuda")
