"""predict_files: reads ahead while inferring, keeps order, bounds memory, clear errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from inference_support import ModuleSegmenter, blob_volume, plan, threshold_labels, threshold_net

from flare_uda.data.io import read_label, read_volume, write_volume
from flare_uda.inference import SlidingWindowInferer
from flare_uda.inference.files import predict_files


@pytest.fixture
def cases(tmp_path):
    """Four blob volumes on disk (different seeds) and their output paths."""
    inputs, outputs = [], []
    for i in range(4):
        path = tmp_path / "in" / f"case_{i}.nii.gz"
        write_volume(blob_volume(seed=i), path)
        inputs.append(path)
        outputs.append(tmp_path / "out" / f"case_{i}.nii.gz")
    return inputs, outputs


@pytest.mark.parametrize("prefetch", [0, 1, 2])
def test_labels_written_in_order_on_each_grid(cases, prefetch):
    inputs, outputs = cases
    seg = ModuleSegmenter(plan(), threshold_net())
    written = predict_files(SlidingWindowInferer(), seg, inputs, outputs, prefetch, False)
    assert written == outputs
    for src, out in zip(inputs, outputs, strict=True):
        image, labels = read_volume(src), read_label(out)
        assert labels.same_geometry(image)
        np.testing.assert_array_equal(labels.array, threshold_labels(image.array))


class Recorder:
    """A read function and an inferer that log what overlaps what."""

    def __init__(self, n_cases: int, wait_s: float = 0.0) -> None:
        self.started: list[int] = []
        self.in_memory: list[int] = []  # reads started and not yet inferred, per inference
        self.inferred = 0
        self.read_events = [threading.Event() for _ in range(n_cases)]
        self.wait_s = wait_s
        self.next_read_seen: list[bool] = []

    def read(self, path):
        index = int(path.stem.split("_")[1].split(".")[0])
        self.started.append(index)
        self.read_events[index].set()
        return read_volume(path)

    def __call__(self, volume, segmenter):
        self.in_memory.append(len(self.started) - self.inferred)
        following = self.inferred + 1
        if self.wait_s and following < len(self.read_events):
            # did the next case's read start while this one is being inferred?
            self.next_read_seen.append(self.read_events[following].wait(timeout=self.wait_s))
        self.inferred += 1
        return volume.with_array(np.zeros(volume.shape, np.uint8))


@pytest.mark.parametrize("prefetch, seen", [(1, True), (0, False)])
def test_the_next_read_starts_during_inference(cases, prefetch, seen):
    inputs, outputs = cases
    rec = Recorder(len(inputs), wait_s=10.0 if seen else 0.3)
    predict_files(rec, None, inputs, outputs, prefetch=prefetch, progress=False, read=rec.read)
    assert rec.next_read_seen == [seen] * (len(inputs) - 1)
    assert rec.started == [0, 1, 2, 3]


@pytest.mark.parametrize("prefetch", [0, 1, 2])
def test_at_most_prefetch_cases_wait_beside_the_current_one(cases, prefetch):
    inputs, outputs = cases
    rec = Recorder(len(inputs))
    predict_files(rec, None, inputs, outputs, prefetch=prefetch, progress=False, read=rec.read)
    assert rec.started == [0, 1, 2, 3]
    assert max(rec.in_memory) <= prefetch + 1
    assert rec.inferred == 4


def test_errors(cases, tmp_path):
    inputs, outputs = cases
    seg = ModuleSegmenter(plan(), threshold_net())
    inferer = SlidingWindowInferer()
    with pytest.raises(ValueError, match="one output per input, got 4 inputs and 3 outputs"):
        predict_files(inferer, seg, inputs, outputs[:3])
    with pytest.raises(ValueError, match="prefetch must be >= 0, got -1"):
        predict_files(inferer, seg, inputs, outputs, prefetch=-1)
    with pytest.raises(ValueError, match="outputs must not overwrite inputs"):
        predict_files(inferer, seg, inputs[:1], inputs[:1])
    broken = tmp_path / "in" / "broken.nii.gz"
    broken.write_bytes(b"not a volume")
    with pytest.raises(RuntimeError, match="could not read input volume .*broken.nii.gz"):
        predict_files(inferer, seg, [broken], [tmp_path / "out" / "b.nii.gz"], progress=False)
    assert not (tmp_path / "out" / "b.nii.gz").exists()
