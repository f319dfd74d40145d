"""Target cases labelled in different label maps are each scored on their own organs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from flare_uda.pipeline.uda import UDAPipeline, UDAResult
from flare_uda.volume import Case, Volume

SPACING = (2.0, 2.0, 2.0)


def _label(boxes: dict[int, tuple[slice, slice, slice]]) -> Volume:
    arr = np.zeros((8, 16, 16), dtype=np.uint8)
    for organ, box in boxes.items():
        arr[box] = organ
    return Volume(arr, SPACING)


def test_each_case_scored_on_the_organs_its_map_annotates():
    liver, spleen = (
        (slice(0, 4), slice(0, 8), slice(0, 8)),
        (slice(4, 8), slice(8, 16), slice(8, 16)),
    )
    truth = _label({1: liver, 3: spleen})
    image = Volume(np.zeros((8, 16, 16), dtype=np.float32), SPACING)
    # "chaos" annotates liver only here; "full" annotates every organ
    partial = Case("partial", image, truth, "MR", "T2", annotated=(1,))
    full = Case("full", image, truth, "MR", "T1", annotated=tuple(range(1, 14)))
    # the prediction finds the liver exactly and misses the spleen
    pred = _label({1: liver})
    result = UDAResult()
    result.predictions["setting"] = {"partial": pred, "full": pred}
    UDAPipeline.evaluate(None, result, [partial, full], SimpleNamespace(executor=None))
    rows = result.rows["setting"]
    by_case = {c: {r.organ: r.dsc for r in rows if r.case == c} for c in ("partial", "full")}
    assert list(by_case["partial"]) == ["liver"]
    assert by_case["partial"]["liver"] == pytest.approx(1.0)
    assert len(by_case["full"]) == 13
    assert by_case["full"]["liver"] == pytest.approx(1.0)
    assert by_case["full"]["spleen"] == pytest.approx(0.0)
    assert [r.case for r in rows] == sorted(r.case for r in rows)
