"""Baselines of benchmarks/bench_inference.py: nnUNetPredictor, MONAI, and the floor.

Each takes the same segmenter (its ``network`` and ``plan``) and raw image.
:func:`ours_inferer` builds our side from the benchmarks' method names.
"""

from __future__ import annotations

import time

import numpy as np


def ours_inferer(name: str):
    """The inferer a method name stands for: ``ours_plain[_torch][_sX]`` or
    ``ours_roi[_body][_torch][_sX]`` (``_torch``: resampling="torch", ``_sX``: step X)."""
    from flare_uda.inference import (
        CoarseToFineConfig,
        CoarseToFineInferer,
        SlidingWindowConfig,
        SlidingWindowInferer,
    )

    if not name.startswith(("ours_plain", "ours_roi")):
        raise ValueError(f"expected ours_plain... or ours_roi..., got {name!r}")
    step = float(name.split("_s")[1]) if "_s" in name else 0.5
    resampling = "torch" if "_torch" in name else "nnunet"
    fine = SlidingWindowConfig(step=step, sw_batch_size=2, resampling=resampling)
    if name.startswith("ours_roi"):
        source = "body" if "body" in name else "organs"
        return CoarseToFineInferer(CoarseToFineConfig(fine=fine, roi_source=source))
    return SlidingWindowInferer(fine)


def nnunet_predictor(seg, mirroring: bool, device: str = "cpu"):
    """An nnUNetPredictor around the same network, with plans matching its plan."""
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from flare_uda.data.datasets import dataset_json

    p = seg.plan
    lin = {"is_seg": False, "order": 1, "order_z": 0, "force_separate_z": None}
    conf = {
        "data_identifier": "bench",
        "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 2,
        "patch_size": list(p.patch_size),
        "median_image_size_in_voxels": [1, 1, 1],
        "spacing": list(p.spacing),
        "normalization_schemes": ["ZScoreNormalization"],
        "use_mask_for_norm": [False],
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": {**lin, "order": 3},
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_seg_kwargs": {**lin, "is_seg": True},
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": lin,
        "architecture": {
            "network_class_name": "unused",
            "arch_kwargs": {},
            "_kw_requires_import": [],
        },
        "batch_dice": False,
    }
    plans = {
        "dataset_name": "Dataset999_Bench",
        "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": list(p.spacing),
        "original_median_shape_after_transp": [1, 1, 1],
        "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2],
        "configurations": {"3d_fullres": conf},
        "experiment_planner_used": "ExperimentPlanner",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {"0": {}},
    }
    pm = PlansManager(plans)
    seg.network.decoder.deep_supervision = False
    predictor = nnUNetPredictor(
        tile_step_size=0.5,
        use_gaussian=True,
        use_mirroring=mirroring,
        perform_everything_on_device=device == "cuda",  # nnU-Net's GPU default
        device=torch.device(device),
        allow_tqdm=False,
    )
    predictor.manual_initialization(
        seg.network.eval(),
        pm,
        pm.get_configuration("3d_fullres"),
        [seg.network.state_dict()],
        dataset_json("MR", 1),
        "bench",
        (0, 1, 2),
    )
    return predictor


def prepared_shape(image, seg, patch):
    from flare_uda.data.preprocess import target_shape

    shape = target_shape(image.shape, image.spacing, seg.plan.spacing)
    return tuple(max(s, p) for s, p in zip(shape, patch, strict=True))


def monai_labels(image, seg, device: str = "cpu"):
    """MONAI sliding_window_inference (overlap 0.5, gaussian), logits resampled, argmax."""
    import torch
    from monai.inferers import sliding_window_inference

    from flare_uda.inference.network_grid import to_network_grid
    from flare_uda.inference.windows import window_starts

    prep = to_network_grid(image, seg.plan, resampling="nnunet").grid
    x = torch.from_numpy(prep.array)[None, None].to(device)
    # on CUDA: fp16 autocast, as ours and nnU-Net use there
    amp = torch.autocast("cuda", dtype=torch.float16, enabled=device == "cuda")
    with torch.inference_mode(), amp:
        logits = sliding_window_inference(
            x, seg.plan.patch_size, 2, seg.network, overlap=0.5, mode="gaussian"
        )
        logits = torch.nn.functional.interpolate(logits, size=image.shape, mode="trilinear")
        labels = logits[0].argmax(0).to(torch.uint8).cpu().numpy()
    # MONAI's scan interval is patch * (1 - overlap); count its windows the same way
    n = len(
        window_starts(
            tuple(max(s, p) for s, p in zip(prep.shape, seg.plan.patch_size, strict=True)),
            seg.plan.patch_size,
            0.5,
        )
    )
    return labels, n


def floor_forward(image, seg, device: str = "cpu"):
    """Forward passes over a no-overlap tiling of the body box; returns their time only."""
    import torch

    from flare_uda.inference.boxes import bounding_box, otsu_body_mask
    from flare_uda.inference.network_grid import to_network_grid
    from flare_uda.inference.windows import pad_to_patch

    prep = to_network_grid(image, seg.plan, resampling="nnunet").grid
    box = bounding_box(otsu_body_mask(prep.array))
    roi, _ = pad_to_patch(prep.array[box][None], seg.plan.patch_size)
    p = seg.plan.patch_size
    counts = [int(np.ceil(s / q)) for s, q in zip(roi.shape[1:], p, strict=True)]
    x = torch.from_numpy(np.ascontiguousarray(roi)).to(device)
    amp = torch.autocast("cuda", dtype=torch.float16, enabled=device == "cuda")
    corners = [
        [min(a * q, s - q) for a, q, s in zip(idx, p, roi.shape[1:], strict=True)]
        for idx in np.ndindex(*counts)
    ]
    crops = [x[:, z : z + p[0], y : y + p[1], w : w + p[2]] for z, y, w in corners]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    with torch.inference_mode(), amp:
        seg.network(crops[0][None])  # warm-up (oneDNN primitives), not timed
        sync()
        t0 = time.perf_counter()
        for i in range(0, len(crops), 2):  # batches of 2, as ours
            seg.network(torch.stack(crops[i : i + 2]))
        sync()
    n = len(crops)
    return np.zeros(image.shape, dtype=np.uint8), n, time.perf_counter() - t0
