"""The phantom CT as an extra labelled source beside the real CT (issue 19's fix), on shared data.

The real CT sources annotate no esophagus and hold kidneys in three patients
only (docs/results.md, "Real data: diagnosis", table a). Read through
``adapt``'s own input checks, as ``examples/adapt_shared_data.py
--extra-source`` does, the phantom's CT adds every organ: these are the facts
the fix rests on, checked without training. Skips when ../shared/data is absent.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "examples"))

import adapt_shared_data as example  # noqa: E402

from flare_uda.data.phantom import write_cohort  # noqa: E402
from flare_uda.pipeline.adapt_inputs import prepare  # noqa: E402

ESOPHAGUS, RIGHT_KIDNEY, LEFT_KIDNEY = 10, 2, 13
REAL_SOURCES = ("ct_amos:amos", "ct_total:total", "ct_chaos:chaos_ct")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    from conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    root = tmp_path_factory.mktemp("real_extra_source")
    example.link_views(SHARED_DATA.resolve(), root / "inputs")
    write_cohort(root / "phantom", preset="tiny", n_ct=2, n_mr=1, progress=False)
    return root


def _prepare(root: Path, extra: list[str], name: str):
    inputs = root / "inputs"
    sources = [f"{inputs / s.split(':')[0]}:{s.split(':')[1]}" for s in REAL_SOURCES]
    return prepare(
        sources + extra,
        inputs / "mr",
        out=root / name,
        sequences=inputs / "sequences.csv",
        target_labels=[f"{inputs / 'mr_labels'}:chaos", f"{inputs / 'mr_labels_total'}:total_mr"],
        preset="tiny",
    )


def _annotating(prepared, organ: int) -> int:
    """Source cases whose label map annotates ``organ`` and hold it."""
    return sum(
        organ in c.annotated and bool((c.label.array == organ).any())
        for c in prepared.inputs.ct.cases
    )


def test_the_phantom_ct_fills_the_organs_the_real_sources_lack(inputs):
    real = _prepare(inputs, [], "run_real")
    both = _prepare(inputs, [f"{inputs / 'phantom' / 'ct'}:flare"], "run_both")
    assert len(both.inputs.ct.cases) == len(real.inputs.ct.cases) + 2
    assert _annotating(real, ESOPHAGUS) == 0
    assert _annotating(both, ESOPHAGUS) == 2
    for kidney in (RIGHT_KIDNEY, LEFT_KIDNEY):
        assert _annotating(both, kidney) == _annotating(real, kidney) + 2
    # both label folders are scored: 5 CHAOS T2 cases (4 organs), the TotalSegmentator MR (13)
    scored = {c.case_id: c for c in both.scored}
    assert len(scored) == 6
    assert len(scored["totalseg_mr_sm"].annotated) == 13
    assert tuple(scored["chaos_t2_1"].annotated) == (1, 2, 3, 13)
