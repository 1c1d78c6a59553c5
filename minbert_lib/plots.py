"""Figures of a run: learning curves (train vs dev per task) and dev confusion matrices.

    plot_run("runs/M7-cpu-seed0")   # writes learning_curves.png and confusion_matrices.png there
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:  # scripts write files; a notebook keeps its inline backend
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402

from minbert_lib.errors import MinbertError  # noqa: E402
from minbert_lib.tasks import REPORT_TASKS, get_task  # noqa: E402

CURVE_TITLES = {"sst_accuracy": "SST accuracy", "quora_accuracy": "Quora accuracy", "sts_pearson": "STS Pearson"}
SST_LABELS = ["0 very neg.", "1 neg.", "2 neutral", "3 pos.", "4 very pos."]


def read_run_file(run_dir: Path, name: str):
    path = Path(run_dir) / name
    if not path.exists():
        raise MinbertError(f"{path} does not exist: is {run_dir} a run folder that has finished an epoch "
                           "(minbert train ...)?")
    return json.loads(path.read_text(encoding="utf-8"))


# Majority-class scores on all of dev, for histories of older kits that did not store their own floors:
# SST 289 of 1,101 sentences, Quora 12,627 of 20,212 pairs; a constant STS prediction has Pearson 0.
FULL_DEV_FLOORS = {"sst_accuracy": 0.262, "quora_accuracy": 0.625, "sts_pearson": 0.0}
METRIC_YLABELS = {"accuracy": "accuracy", "pearson": "Pearson r"}  # by the curve key's ending


def curve_keys(floors: dict) -> list[str]:
    """The dev metric drawn for each task: the report's three tasks', then those of other tasks the run trained."""
    report = [get_task(task).metric_key for task in REPORT_TASKS]
    return report + [key for key in floors if key not in report]


def curve_data(history) -> dict:
    """What the learning-curve figure draws, per panel: {"x", "xlabel", "series": {label: (x, y)}, "floor"}.

    history: history.json's content; an older kit's list of epoch records is drawn per epoch."""
    if isinstance(history, list):
        history = {"epochs": history, "evals": []}
    epochs, evals = history["epochs"], history["evals"]
    floors = history.get("floors", FULL_DEV_FLOORS)
    if evals:
        per_epoch = history.get("steps_per_epoch")
        xlabel = "optimizer steps" + (f" ({per_epoch} = 1 epoch)" if per_epoch else "")
        points, x_of = evals, (lambda record: record["step"])
    else:  # an older kit's history: one point per epoch
        xlabel, points, x_of = "epoch", epochs, (lambda record: record["epoch"])
    panels = {}
    for key in curve_keys(floors):
        series = {"dev (sample)": ([x_of(r) for r in points], [r["dev"][key] for r in points])}
        if epochs:  # the train sample is scored at each epoch's end only
            series["train sample (epoch end)"] = ([x_of(r) for r in epochs], [r["train"][key] for r in epochs])
        ylabel = next((label for metric, label in METRIC_YLABELS.items() if key.endswith(f"_{metric}")), key)
        panels[key] = {"title": CURVE_TITLES.get(key, key.replace("_", " ")), "xlabel": xlabel, "ylabel": ylabel,
                       "series": series,
                       "floor": floors.get(key)}
    tasks = list((points[0] if points else {"train_loss": {}})["train_loss"])
    panels["loss"] = {"title": "training loss", "xlabel": xlabel,
                      "ylabel": "mean loss since the previous point" if evals else "mean loss of the epoch",
                      "series": {task: ([x_of(r) for r in points], [r["train_loss"][task] for r in points])
                                 for task in tasks}, "floor": None}
    return panels


def learning_curves_figure(history) -> plt.Figure:
    """Dev (sample) scores at every evaluation and the train sample's at each epoch's end, per task, with the
    majority-class floor; and the training losses. One x axis for every panel: optimizer steps."""
    panels = curve_data(history)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.25 * len(panels), 3.8))
    for ax, panel in zip(axes, panels.values()):
        for label, (x, y) in panel["series"].items():
            style = "*" if label.startswith("train sample") else ".-"
            ax.plot(x, y, style, label=label, markersize=9 if style == "*" else 6)
        if panel["floor"] is not None:
            name = "constant prediction" if panel["ylabel"] == "Pearson r" else "majority class"
            ax.axhline(panel["floor"], color="grey", linestyle="--", linewidth=1,
                       label=f"{name} ({panel['floor']:.3f})")
        ax.set(title=panel["title"], xlabel=panel["xlabel"], ylabel=panel["ylabel"])
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


QUORA_LABELS = ["not dup.", "duplicate"]


def confusion_panel(ax, counts: list[list[int]], labels: list[str], title: str, colorbar: bool = True) -> None:
    """One confusion matrix, rows = gold, columns = predicted: counts written, colour = share of the gold row."""
    counts = np.array(counts)
    shares = counts / counts.sum(axis=1, keepdims=True).clip(min=1)
    sns.heatmap(shares, annot=counts, fmt="d", cmap="Blues", vmin=0, vmax=1, ax=ax,
                xticklabels=labels, yticklabels=labels, cbar=colorbar)
    ax.set(title=title, xlabel="predicted", ylabel="gold")


def confusion_figure(confusion: dict[str, list[list[int]]]) -> plt.Figure:
    """One confusion matrix per task with classes (SST 5x5, Quora 2x2, ...), rows = gold, columns = predicted,
    coloured by the share of the gold row."""
    class_labels = {"sst": SST_LABELS, "quora": QUORA_LABELS}
    widths = [1.4 if len(counts) > 2 else 1.0 for counts in confusion.values()]  # SST's 5 classes need room
    fig, axes = plt.subplots(1, len(confusion), figsize=(4.6 * sum(widths), 4.4),
                             gridspec_kw={"width_ratios": widths}, squeeze=False)
    for index, (ax, (task, counts)) in enumerate(zip(axes[0], confusion.items())):
        labels = class_labels.get(task, [str(c) for c in range(len(counts))])
        confusion_panel(ax, counts, labels, f"{task.upper()} dev (colour: share of the gold row)",
                        colorbar=index == len(confusion) - 1)
    fig.tight_layout()
    return fig


def runs_figure(histories: dict[str, dict], keys: list[str]) -> plt.Figure:
    """Several runs' dev-sample curves side by side: one panel per metric (sst_accuracy, quora_accuracy,
    sts_pearson), one line per run (label -> history.json's content), the majority-class floor dashed."""
    fig, axes = plt.subplots(1, len(keys), figsize=(5.6 * len(keys), 3.8), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for label, history in histories.items():
            panel = curve_data(history)[key]
            ax.plot(*panel["series"]["dev (sample)"], ".-", label=label)
        if panel["floor"] is not None:
            name = "constant prediction" if key == "sts_pearson" else "majority class"
            ax.axhline(panel["floor"], color="grey", linestyle="--", linewidth=1, label=f"{name} ({panel['floor']:.3f})")
        ax.set(title=f"{panel['title']} (dev sample)", xlabel="optimizer steps", ylabel=panel["ylabel"])
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_run(run_dir: str | Path) -> list[Path]:
    """Write the run's learning_curves.png and, once the run has finished, confusion_matrices.png (the
    confusion matrices come from the final scoring on all of dev); return the paths written."""
    run_dir = Path(run_dir)
    figures = [("learning_curves.png", learning_curves_figure(read_run_file(run_dir, "history.json")))]
    if (run_dir / "confusion.json").exists():
        figures.append(("confusion_matrices.png", confusion_figure(read_run_file(run_dir, "confusion.json"))))
    written = []
    for name, figure in figures:
        figure.savefig(run_dir / name, dpi=110)
        plt.close(figure)
        written.append(run_dir / name)
    return written


ABLATION_METRICS = [("sst_accuracy", "SST acc"), ("quora_accuracy", "Quora acc"), ("sts_pearson", "STS r")]
TABLE_METRICS = ABLATION_METRICS + [("mean_score", "mean")]


def report_values(row: dict) -> list[float | None]:
    """The report's SST, Quora, STS and overall for a table row ("report": 3 or 4 numbers, or None);
    without the report's own overall, the plain mean of its three."""
    report = row.get("report")
    if not report:
        return [None] * 4
    report = list(report)
    return report if len(report) == 4 else report + [sum(report) / 3]


def ablation_markdown(rows: list[dict]) -> str:
    """Table 2 as Markdown: for every metric the kit's dev score beside the report's.

    rows: {"name", "description", "report": (sst, quora, sts[, overall]) or None, "kit": scores dict or None,
           "minutes", optionally "note"}
    """
    header = ["row", "extensions"] + [f"{title} {who}" for _, title in TABLE_METRICS for who in ("kit", "report")]
    header += ["minutes"]
    notes = any(row.get("note") for row in rows)
    header += ["note"] if notes else []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        kit = row["kit"] or {}
        cells = [row["name"], row["description"]]
        for (key, _), report in zip(TABLE_METRICS, report_values(row)):
            cells += [f"{kit[key]:.3f}" if key in kit else "not run", "-" if report is None else f"{report:.3f}"]
        cells += [f"{row['minutes']:.1f}" if row.get("minutes") else "-"]
        cells += [row.get("note") or ""] if notes else []
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def seeds_markdown(rows: list[dict]) -> str:
    """One experiment trained with several seeds as Markdown: each run's best dev scores, then (for
    two runs or more) their mean +- sample standard deviation.

    rows: {"run", "seed", "kit": scores dict, "minutes": float or None}
    """
    metrics = ABLATION_METRICS + [("mean_score", "plain mean")]
    lines = ["| run | seed | " + " | ".join(title for _, title in metrics) + " | minutes |", "|" + "---|" * (len(metrics) + 3)]
    for row in rows:
        minutes = "-" if row["minutes"] is None else f"{row['minutes']:.1f}"
        lines.append(f"| {row['run']} | {row['seed']} | " + " | ".join(f"{row['kit'][key]:.3f}" for key, _ in metrics)
                     + f" | {minutes} |")
    if len(rows) > 1:  # one run has no spread to show
        spread = []
        for key, _ in metrics:
            values = np.array([row["kit"][key] for row in rows])
            spread.append(f"{values.mean():.3f} +- {values.std(ddof=1):.3f}")
        lines.append(f"| mean +- sd of {len(rows)} | | " + " | ".join(spread) + " | |")
    return "\n".join(lines) + "\n"


def ablation_figure(rows: list[dict]) -> plt.Figure:
    """One panel per metric: the kit's dev score per row beside the report's (paired bars)."""
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.2), sharex=True)
    names = [row["name"] for row in rows]
    x = np.arange(len(rows))
    width = 0.4
    kit_colour, report_colour = sns.color_palette()[0], "0.6"
    for ax, (index, (key, title)) in zip(axes, enumerate(TABLE_METRICS)):
        kit = np.array([row["kit"][key] if row["kit"] else np.nan for row in rows], dtype=float)
        report = np.array([np.nan if v is None else v for v in (report_values(row)[index] for row in rows)], dtype=float)
        ax.bar(x - width / 2, kit, width, color=kit_colour, label="kit")
        ax.bar(x + width / 2, report, width, color=report_colour, label="report")
        noted = [position for position, row in zip(x, rows) if row.get("note")]
        if noted:  # rows measured under an older definition
            ax.scatter(np.array(noted) - width / 2, kit[noted] + 0.03, marker="*", color="black", zorder=3,
                       label="measured under another definition (see note)")
        values = np.concatenate([kit, report])
        low = min(0.0, np.nanmin(values)) if np.isfinite(values).any() else 0.0
        ax.set(title=f"{title} (dev)", ylim=(low - 0.05 if low < 0 else 0, 1), xticks=x, ylabel=title,
               xlabel="Table 2 row")
        ax.set_xticklabels(names, rotation=45)
        ax.axhline(0, color="black", linewidth=0.6)
    axes[0].legend(loc="upper right", fontsize=8)  # SST stays below 0.6: the legend hides no bar there
    fig.tight_layout()
    return fig
