"""Trainer: learning, resume, save/load, sampling, error paths (tiny synthetic volumes)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from flare_uda.segmentation import NetworkSegmenter, get_preset, train_segmenter
from flare_uda.segmentation.augment import AugmentConfig
from flare_uda.segmentation.sampling import class_locations, crop_padded, forced_foreground
from flare_uda.volume import Case, Volume

SPACING = (10.0, 6.5, 6.5)  # the tiny preset's spacing


def make_case(seed: int, modality: str = "MR", annotated=(1, 2)) -> Case:
    """Two bright/dark boxes on noise; the label is analytic."""
    rng = np.random.default_rng(seed)
    img = rng.normal(0, 1, (12, 24, 24)).astype(np.float32)
    lab = np.zeros((12, 24, 24), np.uint8)
    lab[3:8, 4:12, 4:12] = 1
    lab[4:9, 13:20, 12:20] = 2 if 2 in annotated else 0
    img[3:8, 4:12, 4:12] += 3.0
    img[4:9, 13:20, 12:20] -= 3.0
    return Case(
        f"c{seed}", Volume(img, SPACING), Volume(lab, SPACING), modality, annotated=annotated
    )


def tiny(**kw):
    return get_preset("tiny", **kw)


def test_loss_decreases_on_tiny_volume():
    cfg = tiny(iterations=30, augment=AugmentConfig(enabled=False), val_every=30)
    seg = train_segmenter([make_case(0), make_case(1)], cfg, progress=False)
    loss = seg.history_["loss"]
    assert len(loss) == 30
    assert np.mean(loss[-5:]) < np.mean(loss[:5]) - 0.1
    assert seg.history_["seconds"]["step"] > 0


def test_validation_dsc_per_epoch_and_partial_labels():
    cfg = tiny(iterations=4, val_every=2)
    cases = [make_case(0), make_case(1, annotated=(1,))]  # organ 2 unknown in c1
    seg = train_segmenter(cases, cfg, val_cases=[make_case(2)], progress=False)
    val = seg.history_["val"]
    assert [v["iteration"] for v in val] == [2, 4]
    assert set(val[-1]["per_organ"]) == {1, 2}
    assert all(0.0 <= d <= 1.0 for d in val[-1]["per_organ"].values())


def test_resume_continues_from_checkpoint_and_matches_uninterrupted(tmp_path, monkeypatch):
    import flare_uda.segmentation.batches as trainer  # where batches are made

    cases = [make_case(0), make_case(1)]
    full = train_segmenter(cases, tiny(iterations=4), tmp_path / "a", progress=False)
    real, calls = trainer.make_batch, []

    def killed_at_third_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("simulated kill")
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "make_batch", killed_at_third_batch)
    with pytest.raises(KeyboardInterrupt):
        train_segmenter(cases, tiny(iterations=4), tmp_path / "b", progress=False)
    monkeypatch.setattr(trainer, "make_batch", real)
    state = torch.load(tmp_path / "b" / "checkpoint_latest.pt", weights_only=False)
    assert state["iteration"] == 2 and not (tmp_path / "b" / "checkpoint_final.pt").exists()
    resumed = train_segmenter(cases, tiny(iterations=4), tmp_path / "b", progress=False)
    assert len(resumed.history_["loss"]) == 4
    np.testing.assert_allclose(resumed.history_["loss"], full.history_["loss"], rtol=1e-5)
    for (k, v), w in zip(
        full.network.state_dict().items(), resumed.network.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(v, w, msg=k)
    # a finished run is not trained again
    again = train_segmenter(cases, tiny(iterations=4), tmp_path / "b", progress=False)
    assert len(again.history_["loss"]) == 4


def test_resume_with_another_config_is_refused(tmp_path):
    cases = [make_case(0)]
    train_segmenter(cases, tiny(iterations=1), tmp_path, progress=False)
    with pytest.raises(
        ValueError, match=r"another configuration \(differs in \['learning_rate'\]\)"
    ):
        train_segmenter(cases, tiny(iterations=2, learning_rate=0.1), tmp_path, progress=False)


def test_save_load_gives_identical_logits(tmp_path):
    seg = train_segmenter([make_case(0)], tiny(iterations=1), tmp_path, progress=False)
    loaded = NetworkSegmenter.load(tmp_path)
    assert loaded.plan == seg.plan
    assert loaded.plan.normalization == "zscore"
    x = torch.randn(1, 1, 8, 16, 16, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(loaded.predict_logits(x), seg.predict_logits(x), rtol=0, atol=0)
    assert json.loads((tmp_path / "network.json").read_text())["architecture"] == "PlainConvUNet"


def test_ct_plan_carries_intensity_stats(tmp_path):
    seg = train_segmenter([make_case(0, "CT")], tiny(iterations=1), progress=False)
    assert seg.plan.normalization == "ct"
    assert {"mean", "std", "percentile_00_5", "percentile_99_5"} <= set(seg.plan.intensity_stats)


def test_sigmoid_head_trains_through_the_trainer_class():
    from flare_uda.segmentation import Trainer

    trainer = Trainer(tiny(iterations=2, head="sigmoid"), progress=False)
    assert trainer.fit([make_case(0)]) is trainer
    assert trainer.segmenter_.plan.head == "sigmoid"
    assert np.isfinite(trainer.history_["loss"]).all() and len(trainer.history_["loss"]) == 2


def test_load_bad_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        NetworkSegmenter.load(tmp_path / "nope")
    (tmp_path / "plan.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=r"missing \['network.json', 'weights.pt'\]"):
        NetworkSegmenter.load(tmp_path)


def test_trainer_error_paths():
    with pytest.raises(ValueError, match="at least one labelled Case, got an empty list"):
        train_segmenter([], tiny(), progress=False)
    unlabelled = make_case(0).with_label(None)
    with pytest.raises(ValueError, match="has no label"):
        train_segmenter([unlabelled], tiny(), progress=False)
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        train_segmenter([make_case(0)], {"iterations": 1}, progress=False)
    with pytest.raises(ValueError, match=r"classes 0\.\.1, got range 0\.\.2"):
        train_segmenter([make_case(0)], tiny(num_classes=2), progress=False)
    with pytest.raises(ValueError, match="needs one modality"):
        train_segmenter([make_case(0, "CT"), make_case(1, "MR")], tiny(), progress=False)


def test_label_image_geometry_mismatch_is_refused():
    case = make_case(0)
    bad = Volume(case.label.array[:, :20], SPACING)
    with pytest.raises(ValueError, match="must share one geometry"):
        Case("x", case.image, bad)


def test_foreground_oversampling_rule_and_padding():
    # nnU-Net: batch 2 -> second sample forced; batch 3 -> last one
    assert [forced_foreground(i, 2, 0.33) for i in range(2)] == [False, True]
    assert [forced_foreground(i, 3, 0.33) for i in range(3)] == [False, False, True]
    label = np.zeros((4, 4, 4), np.int16)
    label[1, 2, 3] = 5
    locs = class_locations(label, np.random.default_rng(0))
    assert list(locs) == [5] and locs[5].tolist() == [[1, 2, 3]]
    image = np.arange(64, dtype=np.float32).reshape(1, 4, 4, 4)
    img, seg = crop_padded(image, label, np.array([0, 0, 0]), (2, 2, 2))
    assert seg[0, 0, 0, 0] == -1 and img[0, 0, 0, 0] == 0  # outside the volume
    assert seg[0, 1, 1, 1] == 0 and img[0, 1, 1, 1] == image[0, 0, 0, 0]


def test_batch_workers_give_the_same_training_as_the_main_process(tmp_path):
    cases = [make_case(0), make_case(1)]
    serial = train_segmenter(cases, tiny(iterations=3), progress=False, num_workers=0)
    pooled = train_segmenter(cases, tiny(iterations=3), progress=False, num_workers=2)
    np.testing.assert_allclose(pooled.history_["loss"], serial.history_["loss"], rtol=1e-5)


def test_negative_workers_and_unknown_devices_are_refused():
    cases = [make_case(0)]
    with pytest.raises(ValueError, match="num_workers must be an int >= 0, got -1"):
        train_segmenter(cases, tiny(iterations=1), progress=False, num_workers=-1)
    with pytest.raises(ValueError, match="expected a device like"):
        train_segmenter(cases, tiny(iterations=1), progress=False, device="gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_cuda_on_a_cpu_machine_is_an_error_not_a_fallback():
    with pytest.raises(ValueError, match="torch sees no CUDA device"):
        train_segmenter([make_case(0)], tiny(iterations=1), progress=False, device="cuda")
