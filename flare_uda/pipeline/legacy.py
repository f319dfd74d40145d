"""Read pipeline configs written by flare_uda 0.1 (same meaning, the new layout).

0.1 mirrored the stages' options under other names: ``translation: {method,
preset, iterations}``, one ``pseudolabel`` section for MDM and self-training
(``better_sequence``, ``quality_gate``, ``mdm_features``, ``keep_fraction``,
``ensemble``, ...), ``inference: {mode, step, resampling}``, segmentation
fields next to ``preset`` and a top-level ``seed``. :func:`upgrade` maps
them onto the sections of :class:`~flare_uda.pipeline.config.UDAConfig`
(with a warning that says so); a new-layout dict passes unchanged. Only
what 0.1 could express is mapped; nothing is guessed.
"""

from __future__ import annotations

import warnings
from typing import Any

from flare_uda.options import to_plain
from flare_uda.registry import unknown_name_error

_PSEUDOLABEL = {
    "better_sequence",
    "registrar",
    "mdm_features",
    "quality_gate",
    "rounds",
    "keep_fraction",
    "ensemble",
}


def is_legacy(d: dict[str, Any]) -> bool:
    """Whether ``d`` uses the 0.1 layout somewhere."""
    tr, inf = d.get("translation"), d.get("inference")
    segs = [d.get(k) for k in ("segmentation", "final_segmentation")]
    return (
        "pseudolabel" in d
        or "seed" in d
        or (isinstance(tr, dict) and bool({"method", "preset", "iterations"} & set(tr)))
        or (isinstance(inf, dict) and bool({"mode", "step", "resampling"} & set(inf)))
        or any(isinstance(s, dict) and bool(set(s) - {"preset", "options"}) for s in segs)
    )


def upgrade(d: dict[str, Any]) -> dict[str, Any]:
    """``d`` in the current layout (a copy); warns when it was in the 0.1 layout."""
    if not is_legacy(d):
        return d
    out = dict(d)
    seed = out.pop("seed", None)
    if isinstance(out.get("translation"), dict) and "name" not in out["translation"]:
        out["translation"] = _translation(out["translation"], seed)
    for key in ("segmentation", "final_segmentation"):
        section = out.get(key)
        if isinstance(section, dict) and set(section) - {"preset", "options"}:
            options = {k: v for k, v in section.items() if k != "preset"}
            if seed is not None:
                options.setdefault("seed", seed)
            out[key] = {"preset": section.get("preset", "quick"), "options": options}
    if isinstance(out.get("inference"), dict) and "name" not in out["inference"]:
        out["inference"] = _inference(out["inference"])
    if isinstance(out.get("pseudolabel"), dict):
        out.update(_pseudolabel(out.pop("pseudolabel")))
    warnings.warn(
        "this config uses the flare_uda 0.1 layout (method/preset, pseudolabel, inference "
        "mode, seed); it was read with the same meaning. `flare-uda demo --config FILE "
        "--print-config` prints it in the current layout.",
        UserWarning,
        stacklevel=3,
    )
    return out


def _translation(old: dict[str, Any], seed: int | None) -> dict[str, Any]:
    from flare_uda.translation import TRANSLATORS

    name = old.get("method", "asit")
    unknown = set(old) - {"method", "preset", "iterations"}
    if unknown:  # left in place: the new reader names them
        return {"name": name, "options": {k: old[k] for k in unknown}}
    klass = TRANSLATORS.get(name)
    options: dict[str, Any] = {}
    if klass.presets:
        options = to_plain(klass.presets[old.get("preset", "quick")])
        if old.get("iterations") is not None:
            options["iterations"] = old["iterations"]
        if seed is not None:
            options["seed"] = seed
    return {"name": name, "options": options}


def _inference(old: dict[str, Any]) -> dict[str, Any]:
    window = {k: old[k] for k in ("step", "resampling") if k in old}
    if old.get("mode", "plain") == "roi":
        return {"name": "roi", "options": {"fine": window}}
    return {"name": "sliding_window", "options": window}


def _pseudolabel(old: dict[str, Any]) -> dict[str, Any]:
    for key in old:
        if key not in _PSEUDOLABEL:
            raise unknown_name_error(
                "option of the 0.1 pseudolabel section", str(key), [*_PSEUDOLABEL]
            )
    better = old.get("better_sequence", "T1")
    registrar = old.get("registrar", "torch")
    features = {"anatomy": "image", "labels": "labels"}.get(old.get("mdm_features", "anatomy"))
    if features is None:
        raise ValueError(
            f"pseudolabel.mdm_features must be 'anatomy' or 'labels', got {old['mdm_features']!r}"
        )
    reg_options: dict[str, Any] = {"features": features}
    if registrar in ("torch", "sitk"):
        reg_options["shrink_factors"] = [8, 4, 2]  # 0.1's MDM default pyramid
    mdm = {
        "better": better,
        "worse": "T2" if better == "T1" else "T1",
        "registrar": {"name": registrar, "options": reg_options},
        "gate_dice": 0.8 if old.get("quality_gate", False) else None,
    }
    self_training = {
        "rounds": old.get("rounds", 2),
        "filter": {
            "name": "uncertainty",
            "options": {"keep_fraction": old.get("keep_fraction", 0.75)},
        },
        "ensembler": {"name": old.get("ensemble", "union")},
    }
    return {"mdm": mdm, "self_training": self_training}
