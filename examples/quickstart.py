"""Quickstart: the method on the phantom, stage by stage, as a notebook would call it.

Run: .venv/bin/python examples/quickstart.py
"""

from flare_uda.data.phantom import generate_cohort
from flare_uda.inference import SlidingWindowInferer
from flare_uda.metrics import evaluate_case, summarize
from flare_uda.metrics.evaluate import case_rows
from flare_uda.segmentation import get_preset, train_segmenter
from flare_uda.translation import ASIT

# 1. Data: labelled CT, unlabelled MR (labels kept aside for scoring only).
ct, mr = generate_cohort("tiny", n_ct=2, n_mr=2, seed=0)

# 2. ASIT: CycleGAN in Sobel anatomy space, CT -> fake MR on the CT grids
#    (options: the "quick" preset, fewer iterations; ASIT.presets lists the presets).
asit = ASIT.from_preset("quick", iterations=20)
asit.fit(ct, [c.with_label(None) for c in mr])
fake_mr = [c.with_image(asit.to_target(c.image)) for c in ct]

# 3. A small segmenter trained on fake MR with the CT labels.
config = get_preset("tiny", iterations=10, spacing=(10.0, 7.0, 7.0), normalization="zscore")
segmenter = train_segmenter(fake_mr, config)

# 4. Inference on real MR, seen through the same anatomy space; FLARE metrics.
inferer = SlidingWindowInferer()
rows = []
for case in mr:
    pred = inferer(asit.to_space(case.image), segmenter)
    rows += case_rows(case.case_id, evaluate_case(pred.array, case.label.array, case.image.spacing))
for line in summarize(rows):
    print(
        f"{line['organ']:22s} DSC {100 * line['dsc_mean']:5.1f}  NSD {100 * line['nsd_mean']:5.1f}"
    )
