"""``RUN/report.md`` of ``adapt``: inputs, sub-domains, scores, the target's labels, stages.

Figures: ``subdomains.png`` (``auto``: the appearance statistics of every target
scan, coloured by cluster), ``labels.png`` (the model's labels on a few target
cases), and with target labels ``ablation.png`` and ``overlays.png`` (best and
worst scored case) beside ``ablation.csv`` and ``metrics_<setting>.csv``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from flare_uda._atomic import atomic_path, write_text
from flare_uda.metrics import summarize
from flare_uda.pipeline.report import (
    SETTING_TITLES,
    ablation_figure,
    ablation_rows,
    overlay_figure,
    stage_table,
    write_csv,
)
from flare_uda.volume import Case, Volume

MAX_SHOWN = 4
"""Target cases shown in ``labels.png``."""


def _fmt(v: float) -> str:
    return "n/a" if v != v else f"{100 * v:.1f}"


def _figure(rows: int, cols: int, size: tuple[float, float]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(rows, cols, figsize=size, squeeze=False)


def _save(plt, fig, path: str | os.PathLike) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return Path(path)


def labels_figure(cases: Sequence[Case], labels: Mapping[str, Volume], path) -> Path:
    """The first :data:`MAX_SHOWN` cases: image and labels on the slice with most label."""
    from matplotlib.colors import ListedColormap

    from flare_uda.data.phantom.preview import organ_colors

    shown = [c for c in cases if c.case_id in labels][:MAX_SHOWN]
    plt, fig, axes = _figure(1, len(shown), (3.2 * len(shown), 3.4))
    for ax, case in zip(axes[0], shown, strict=True):
        label = labels[case.case_id].array
        z = int(np.argmax((label > 0).sum(axis=(1, 2)))) if label.any() else label.shape[0] // 2
        image = case.image.array[z]
        lo, hi = np.percentile(image, (1, 99))
        ax.imshow(image, cmap="gray", vmin=lo, vmax=hi)
        cmap = ListedColormap(organ_colors())
        ax.imshow(np.ma.masked_equal(label[z], 0), cmap=cmap, vmin=0, vmax=13, alpha=0.6)
        ax.set_title(f"{case.case_id} ({case.sequence}), z={z}", fontsize=8)
        ax.axis("off")
    return _save(plt, fig, path)


def subdomain_figure(features: Mapping[str, Mapping[str, float]], sequences, path) -> Path:
    """Noise floor against texture of every target scan, one colour per cluster."""
    plt, fig, axes = _figure(1, 1, (5, 4))
    ax = axes[0][0]
    for name in sorted(set(sequences.values())):
        ids = [c for c in features if sequences[c] == name]
        ax.scatter([features[c]["noise"] for c in ids], [features[c]["texture"] for c in ids],
                   label=f"{name} ({len(ids)})")  # fmt: skip
    ax.set_xlabel("noise floor (log, relative to the body median)")
    ax.set_ylabel("texture (log)")
    ax.legend(title="sub-domain")
    ax.set_title("Target scans by appearance")
    return _save(plt, fig, path)


def _inputs(prepared) -> list[str]:
    lines = [
        "## Inputs",
        "",
        "| role | folder | layout | label map | cases |",
        "|---|---|---|---|---|",
    ]
    for f in prepared.folders:
        lines.append(
            f"| {f.role} | `{f.path}` | {f.layout} | {f.label_map or '-'} | {len(f.cases)} |"
        )
    notes = [n for f in prepared.folders for n in f.notes] + prepared.notes
    return lines + [""] + [f"- {n}" for n in notes] + ([""] if notes else [])


def _subdomains(prepared, subdomains: dict | None) -> list[str]:
    cases = prepared.inputs.mr.cases
    names = sorted({str(c.sequence) for c in cases})
    lines = ["## MR sub-domains", "", f"Sequence names {prepared.sequences}."]
    if subdomains is None:
        lines += ["", "| sub-domain | cases |", "|---|---|"]
        for name in names:
            ids = [c.case_id for c in cases if str(c.sequence) == name]
            lines.append(f"| {name} | {len(ids)}: {', '.join(ids[:8])} |")
        better, worse = prepared.config.mdm.better, prepared.config.mdm.worse
        return lines + ["", f"MDM moves `{better}` labels onto `{worse}` cases.", ""]
    clusters = subdomains.get("clusters", {})
    weights = ", ".join(f"{g} {w:.2g}" for g, w in (subdomains.get("weights") or {}).items())
    lines += [
        "",
        "Clusters of the target scans' appearance (group weights, by how cleanly each "
        f"splits the scans: {weights}); ranked by pseudo-label stability (eq. 7 over two "
        "rounds, lower is better) and plausibility (organ volumes against the CT labels, "
        "lower is better).",
        "",
        "| cluster | cases | eq. 7 (median) | implausibility (median) | ranks |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        ids = [c.case_id for c in cases if str(c.sequence) == name]
        c = clusters.get(name, {})
        ranks = f"{c.get('uncertainty_rank', '-')} / {c.get('implausibility_rank', '-')}"
        u, p = c.get("uncertainty", float("nan")), c.get("implausibility", float("nan"))
        lines.append(f"| {name} | {len(ids)}: {', '.join(ids[:8])} | {u:.3g} | {p:.3g} | {ranks} |")
    lines += ["", f"**Chosen:** `{subdomains['better']}` is the better domain, MDM moves its "
              f"labels onto `{subdomains['worse']}` cases."]  # fmt: skip
    if subdomains.get("note"):
        lines += ["", f"Note: {subdomains['note']}."]
    if subdomains.get("all_empty"):
        lines += ["", "Note: every pseudo-label was empty, so the choice is arbitrary."]
    subdomain_figure(subdomains["features"], {c.case_id: str(c.sequence) for c in cases},
                     prepared.out / "subdomains.png")  # fmt: skip
    return lines + ["", "![sub-domains](subdomains.png)", ""]


def _scores(prepared, result) -> list[str]:
    out = prepared.out
    sequences = {c.case_id: str(c.sequence) for c in prepared.scored}
    table = ablation_rows(result.rows, sequences)
    write_csv(out / "ablation.csv", table)
    for setting, rows in result.rows.items():
        write_csv(out / f"metrics_{setting}.csv", [r.__dict__ for r in rows])
    ablation_figure(table, out / "ablation.png", title="Settings on the labelled target cases")
    seqs = sorted(set(sequences.values())) + ["all"]
    lines = [
        f"## Scores on the target labels ({len(prepared.scored)} cases, mean DSC / NSD %)",
        "",
        "| setting | " + " | ".join(f"{s} DSC" for s in seqs) + " | all NSD |",
        "|---|" + "---|" * (len(seqs) + 1),
    ]
    for setting in result.rows:
        means = {(r["sequence"], k): r[k] for r in table for k in ("dsc", "nsd")
                 if r["setting"] == setting and r["organ"] == "mean"}  # fmt: skip
        vals = [_fmt(means.get((s, "dsc"), float("nan"))) for s in seqs]
        nsd = _fmt(means.get(("all", "nsd"), float("nan")))
        lines.append(f"| {SETTING_TITLES.get(setting, setting)} | {' | '.join(vals)} | {nsd} |")
    lines += ["", "![settings](ablation.png)", ""]
    method = prepared.method
    if method in result.rows:
        lines += [f"Per organ, {SETTING_TITLES.get(method, method)}:", "",
                  "| organ | DSC | NSD |", "|---|---|---|"]  # fmt: skip
        for s in summarize(result.rows[method]):
            lines.append(f"| {s['organ']} | {_fmt(s['dsc_mean'])} | {_fmt(s['nsd_mean'])} |")
        case_dsc = {}
        for cid in sequences:
            vals = [r.dsc for r in result.rows[method] if r.case == cid and r.dsc == r.dsc]
            case_dsc[cid] = float(np.mean(vals)) if vals else 0.0
        overlay_figure(prepared.scored, result.predictions[method], case_dsc, out / "overlays.png")
        lines += [
            "",
            "Best (top) and worst (bottom) scored case:",
            "",
            "![overlays](overlays.png)",
            "",
        ]
    return lines


def write_adapt_report(prepared, result, subdomains: dict | None, model_written: bool) -> Path:
    """Write ``report.md`` and its figures into ``prepared.out``; the report's path."""
    out, method = prepared.out, prepared.method
    n_ct, n_mr = len(prepared.inputs.ct.cases), len(prepared.inputs.mr.cases)
    lines = [
        "# flare_uda adapt report",
        "",
        f"{n_ct} labelled CT cases -> {n_mr} unlabelled MR cases; method "
        f"`{method}` ({SETTING_TITLES.get(method, method)}); settings run: "
        f"{', '.join(prepared.settings)}.",
        "",
    ]
    if model_written:
        lines += [f"Model: `{out / 'model'}` (`flare-uda predict --model {out / 'model'} -i ... "
                  "-o ...`); labels of the target cases in `labels/`.", ""]  # fmt: skip
    for name, why in result.notes.get("skipped", {}).items():
        lines += [f"**Setting `{name}` did not run:** {why}.", ""]
    lines += _inputs(prepared) + _subdomains(prepared, subdomains)
    if prepared.scored and result.rows:
        lines += _scores(prepared, result)
    if model_written:
        labels_figure(prepared.inputs.mr.cases, result.predictions[method], out / "labels.png")
        lines += ["## Labels of the target cases", "", "![labels](labels.png)", ""]
    lines += stage_table(result.stages)
    return write_text(out / "report.md", "\n".join(lines) + "\n")
