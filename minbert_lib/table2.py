"""The kit's Table 2: the rows `minbert reproduce` saved, the report's number beside each, the findings check.

    rows, made_by = load_table2(COMMITTED_CPU_TABLE)   # the measured table the kit commits
    text, figure = table2_report(rows, made_by)       # Markdown (table, findings, how it was made) and a figure

A row is {"name", "description", "kit": best-dev-scores, "minutes"} as table2.json holds it.
"""
from __future__ import annotations

import json
from pathlib import Path

from minbert_lib.errors import MinbertError

QUORA_NOTE = ("note: the MiniLM weights were sentence-tuned on data that include Quora duplicate questions, "
              "and the mirror's quora-train.csv is partial: Quora numbers are optimistic and not comparable "
              "with the CS224N leaderboard")
TABLE2_SOURCES = "a reproduce folder (holding table2.json) or a table2 JSON file"
# the table measured with the cpu budget, seed 0, in the kit's checkout (made by the command it records)
COMMITTED_CPU_TABLE = Path(__file__).resolve().parent.parent / "results" / "table2-cpu-seed0.json"


def load_table2(source: str | Path) -> tuple[list[dict], str]:
    """The rows (and how they were made) of a Table 2 JSON that `minbert reproduce` wrote."""
    source = Path(source)
    path = source / "table2.json" if source.is_dir() else source
    if not path.is_file() or path.suffix != ".json":
        raise MinbertError(f"{source} is not {TABLE2_SOURCES}")
    saved = json.loads(path.read_text(encoding="utf-8"))
    return saved["rows"], saved.get("made_by", "")


def table2_report(rows: list[dict], made_by: str = ""):
    """Table 2 with the report's number beside the kit's in every cell, then the findings check, as
    Markdown; and the same table as a figure (one panel per metric)."""
    from minbert_lib.plots import ablation_figure, ablation_markdown
    from minbert_lib.report import TABLE2, check_findings, findings_markdown

    rows = [{**row, "report": None if row["name"] not in TABLE2 else
             tuple(TABLE2[row["name"]].scores().values())} for row in rows]
    findings = check_findings({row["name"]: row["kit"] for row in rows if row["kit"]})
    noted = [f"{row['name']} ({row['note']})" for row in rows if row.get("note")]
    text = (ablation_markdown(rows) + "\n" + findings_markdown(findings)
            + (f"\nRows with a note were measured under another definition: {', '.join(noted)}.\n" if noted else "")
            + (f"\nMade by: `{made_by}`.\n" if made_by else "") + f"\n{QUORA_NOTE}\n")
    return text, ablation_figure(rows)
