"""The run report: ``ablation.csv``, a markdown summary and its figures.

``ablation.csv`` has one row per (setting, sequence, organ) with the mean DSC
and NSD over the test cases of that sequence (``sequence="all"`` pools T1 and
T2; ``organ="mean"`` is the mean over cases of each case's organ mean).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from flare_uda._atomic import atomic_path, write_text
from flare_uda.metrics import MetricRow, summarize
from flare_uda.pipeline.runner import StageRecord, format_seconds
from flare_uda.volume import Case, Volume

SETTING_TITLES = {
    "only_ct": "Only CT",
    "cyclegan": "CycleGAN",
    "anatomy": "Anatomy space (no GAN)",
    "asit": "ASIT",
    "asit_mdm": "ASIT + MDM",
    "asit_mdm_plf": "ASIT + MDM + PLF",
    "asit_mdm_multi": "ASIT + multi-atlas MDM",
    "asit_mdm_plf_organ": "ASIT + MDM + PLF (organ-wise)",
    "asit_mdm_atlas": "ASIT + MDM + CT atlas",
    "asit_mdm_atlas_plf": "ASIT + MDM + CT atlas + PLF (organ-wise)",
    "synth": "CT, random contrasts",
    "synth_mdm": "Random contrasts + MDM",
    "synth_mdm_plf": "Random contrasts + MDM + PLF",
    "oracle": "Oracle (MR labels)",
}


def ablation_rows(
    rows: Mapping[str, Sequence[MetricRow]], sequences: Mapping[str, str]
) -> list[dict]:
    """Summarise per setting and sequence (``T1``, ``T2``, ``all``)."""
    out = []
    for setting, srows in rows.items():
        groups = {"all": list(srows)}
        for seq in sorted(set(sequences.values())):
            groups[seq] = [r for r in srows if sequences.get(r.case) == seq]
        for seq, sel in groups.items():
            if not sel:
                continue
            for s in summarize(sel):
                out.append(
                    {
                        "setting": setting,
                        "sequence": seq,
                        "organ": s["organ"],
                        "dsc": s["dsc_mean"],
                        "nsd": s["nsd_mean"],
                    }
                )
    return out


def write_csv(path: str | os.PathLike, rows: Sequence[dict]) -> Path:
    """Atomically write dict rows as CSV (floats with 4 decimals)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    for r in rows:
        writer.writerow({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in r.items()})
    return write_text(path, buf.getvalue())


def _mean(table: list[dict], setting: str, seq: str, key: str) -> float:
    for r in table:
        if r["setting"] == setting and r["sequence"] == seq and r["organ"] == "mean":
            return 100 * r[key]
    return float("nan")


def ablation_figure(
    table: list[dict],
    path: str | os.PathLike,
    title: str = "Ablation on the phantom's held-out MR cases",
) -> Path:
    """Grouped bars: mean DSC per setting for T1, T2 and all."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = list(dict.fromkeys(r["setting"] for r in table))
    seqs = [s for s in ("T1", "T2", "all") if any(r["sequence"] == s for r in table)]
    x = np.arange(len(settings))
    width = 0.8 / len(seqs)
    fig, ax = plt.subplots(figsize=(1.6 * len(settings) + 2, 4))
    for i, seq in enumerate(seqs):
        vals = [_mean(table, s, seq, "dsc") for s in settings]
        bars = ax.bar(x + (i - (len(seqs) - 1) / 2) * width, vals, width, label=seq)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(x, [SETTING_TITLES.get(s, s) for s in settings], rotation=20, ha="right")
    ax.set_ylabel("mean DSC (%) over 13 organs")
    ax.set_ylim(0, 100)
    ax.legend(title="MR sequence")
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return Path(path)


def overlay_figure(
    cases: Sequence[Case],
    preds: Mapping[str, Volume],
    scores: Mapping[str, float],
    path: str | os.PathLike,
) -> Path:
    """Axial slices of the best and worst test cases: image, reference, prediction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    from flare_uda.data.phantom.preview import organ_colors

    cmap = ListedColormap(organ_colors())
    ranked = sorted(scores, key=scores.get)
    picks = [ranked[-1], ranked[0]] if len(ranked) > 1 else ranked
    by_id = {c.case_id: c for c in cases}
    fig, axes = plt.subplots(len(picks), 3, figsize=(9, 3.2 * len(picks)), squeeze=False)
    for row, cid in zip(axes, picks, strict=True):
        case = by_id[cid]
        z = int(np.argmax((case.label.array > 0).sum(axis=(1, 2))))
        img = case.image.array[z]
        lo, hi = np.percentile(img, (1, 99))
        for ax, (title, lab) in zip(
            row,
            (
                ("image", None),
                ("reference", case.label.array[z]),
                ("prediction", preds[cid].array[z]),
            ),
            strict=True,
        ):
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi)
            if lab is not None:
                ax.imshow(
                    np.ma.masked_equal(lab, 0),
                    cmap=cmap,
                    vmin=0,
                    vmax=13,
                    interpolation="nearest",
                    alpha=0.6,
                )
            ax.set_title(
                f"{cid} ({case.sequence}) {title}"
                + (f"  DSC {100 * scores[cid]:.1f}" if title == "prediction" else ""),
                fontsize=8,
            )
            ax.axis("off")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return Path(path)


def _fmt(v: float) -> str:
    return "n/a" if v != v else f"{100 * v:.1f}"


def write_report(
    out_dir: str | os.PathLike,
    rows: Mapping[str, Sequence[MetricRow]],
    test_cases: Sequence[Case],
    predictions: Mapping[str, Mapping[str, Volume]],
    final_setting: str,
    header: str = "",
    stages: Sequence[StageRecord] = (),
    diagnosis: Mapping[str, Mapping] | None = None,
) -> Path:
    """Write ``ablation.csv``, ``metrics_<setting>.csv``, figures and ``report.md``.

    ``stages``: how each pipeline stage was obtained, shown as a wall-time table;
    ``diagnosis``: the pseudo-labels of each setting against the truth
    (:mod:`flare_uda.pipeline.diagnosis`), shown next to the final DSC.
    """
    out = Path(out_dir)
    sequences = {c.case_id: c.sequence or "?" for c in test_cases}
    table = ablation_rows(rows, sequences)
    write_csv(out / "ablation.csv", table)
    for setting, srows in rows.items():
        write_csv(out / f"metrics_{setting}.csv", [r.__dict__ for r in srows])
    ablation_figure(table, out / "ablation.png")
    lines = [
        "# flare_uda run report",
        "",
        header,
        "",
        "## Ablation (mean DSC / NSD, %)",
        "",
        "| setting | T1 DSC | T2 DSC | all DSC | all NSD |",
        "|---|---|---|---|---|",
    ]
    for setting in rows:
        vals = [_mean(table, setting, s, "dsc") / 100 for s in ("T1", "T2", "all")]
        nsd = _mean(table, setting, "all", "nsd") / 100
        lines.append(
            f"| {SETTING_TITLES.get(setting, setting)} | "
            + " | ".join(_fmt(v) for v in vals)
            + f" | {_fmt(nsd)} |"
        )
    lines += ["", "![ablation](ablation.png)", ""]
    if diagnosis:
        lines += diagnosis_table(diagnosis, {s: _mean(table, s, "all", "dsc") / 100 for s in rows})
    if final_setting in rows:
        lines += [
            f"## Per organ: {SETTING_TITLES.get(final_setting, final_setting)} "
            "(mean ± std over test cases, %)",
            "",
            "| organ | DSC | NSD |",
            "|---|---|---|",
        ]
        for s in summarize(rows[final_setting]):
            lines.append(
                f"| {s['organ']} | {_fmt(s['dsc_mean'])} ± {_fmt(s['dsc_std'])} | "
                f"{_fmt(s['nsd_mean'])} ± {_fmt(s['nsd_std'])} |"
            )
        case_dsc = {}
        for cid in sequences:
            vals = [r.dsc for r in rows[final_setting] if r.case == cid and r.dsc == r.dsc]
            case_dsc[cid] = float(np.mean(vals)) if vals else 0.0
        overlay_figure(test_cases, predictions[final_setting], case_dsc, out / "overlays.png")
        lines += ["", "Best (top) and worst (bottom) test case:", "", "![overlays](overlays.png)"]
    if stages:
        lines += ["", *stage_table(stages)]
    return write_text(out / "report.md", "\n".join(lines) + "\n")


def diagnosis_table(diagnosis: Mapping[str, Mapping], final: Mapping[str, float]) -> list[str]:
    """Markdown lines: per setting, the pseudo-labels it trained on and its final DSC."""
    from flare_uda.pipeline.diagnosis import MDM_INPUT

    lines = [
        "## Why each row moves: the pseudo-labels each setting trained on",
        "",
        "Against the true labels of the MR adaptation cases (used for this diagnosis only). "
        "Held: annotated and present; DSC over 13 counts an organ not held as 0. Settings "
        "trained on fake MR (CT labels) have none.",
        "",
        "| setting | cases | organs held, mean (min) of 13 | DSC, held organs "
        "| DSC over 13 | final DSC (test) |",
        "|---|---|---|---|---|---|",
    ]
    names = ([MDM_INPUT] if MDM_INPUT in diagnosis else []) + [s for s in final]
    for name in names:
        title = "ASIT pseudo-labels (MDM input)" if name == MDM_INPUT else None
        title = title or SETTING_TITLES.get(name, name)
        d = diagnosis.get(name)
        if d is None:
            cells = ["", "n/a", "n/a", "n/a"]
        else:
            held = "n/a" if d["dsc_held"] is None else _fmt(d["dsc_held"])
            organs = f"{d['organs_mean']:.1f} ({d['organs_min']})"
            cells = [str(d["cases"]), organs, held, _fmt(d["dsc_all"])]
        score = "" if name == MDM_INPUT else _fmt(final.get(name, float("nan")))
        lines.append(f"| {title} | " + " | ".join(cells) + f" | {score} |")
    return lines + [""]


def stage_table(stages: Sequence[StageRecord]) -> list[str]:
    """Markdown lines: every stage, whether it ran now or came from the cache, its wall time."""
    lines = [
        "## Stages (wall time)",
        "",
        "A cached stage shows the time of the run that computed it.",
        "",
        "| stage | key | this run | wall time |",
        "|---|---|---|---|",
    ]
    total = 0.0
    for r in stages:
        seconds = "n/a" if r.seconds is None else format_seconds(r.seconds)
        total += r.seconds or 0.0
        lines.append(f"| {r.name} | `{r.key}` | {r.status} | {seconds} |")
    ran = sum(r.seconds or 0.0 for r in stages if r.status == "ran")
    lines.append(f"| total | | ran now: {format_seconds(ran)} | {format_seconds(total)} |")
    return lines
