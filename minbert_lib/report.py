"""The report's numbers and the findings it draws from Table 2, as facts the kit compares itself with.

Every number here is printed in the report *minBERT and Downstream Tasks* (Agashe, Chung, Wang;
CS224N): Table 2 (dev, rows M0-M12) and Table 1 (test, its best dev row M7). "overall" is the plain
mean of the three metrics as the report prints it (rounded values, so it can differ from the mean
of the printed metrics in the last digit). tests/test_report.py compares them with
../shared/report/tables.csv where that file exists.

    TABLE2["M7"].sst                      # 0.452
    check_findings(kit_table)             # each finding: the report's comparison beside the kit's

A "table" for the findings is {row: {"sst_accuracy", "quora_accuracy", "sts_pearson", "mean_score"}}
(as best-dev-scores.json holds them); rows that were not run may be missing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class ReportRow:
    name: str
    extensions: str
    split: str
    sst: float
    quora: float
    sts: float
    overall: float

    def scores(self) -> dict[str, float]:
        """The row in the kit's score names."""
        return {"sst_accuracy": self.sst, "quora_accuracy": self.quora, "sts_pearson": self.sts,
                "mean_score": self.overall}


def _rows(split: str, *rows) -> dict[str, ReportRow]:
    return {row[0]: ReportRow(row[0], row[1], split, *row[2:]) for row in rows}


# Table 2 of the report (dev): row, extensions, SST accuracy, Quora accuracy, STS Pearson, overall
TABLE2: dict[str, ReportRow] = _rows(
    "dev",
    ("M0", "BL", 0.528, 0.530, -0.270, 0.262),
    ("M1", "BL+TM1", 0.495, 0.778, 0.369, 0.547),
    ("M2", "BL+TM1+MNR", 0.500, 0.770, 0.392, 0.554),
    ("M3", "BL+TM1+COS-S", 0.500, 0.778, 0.599, 0.626),
    ("M4", "BL+TM1+COS-S+COS-P", 0.494, 0.584, 0.599, 0.559),
    ("M5", "BL+TM1+COS-S+MNR", 0.503, 0.771, 0.610, 0.628),
    ("M6", "BL+TM1+COS-S+FL2", 0.435, 0.763, 0.677, 0.625),
    ("M7", "BL+TM1+COS-S+FL4", 0.452, 0.779, 0.674, 0.635),
    ("M8", "BL+TM2", 0.494, 0.718, 0.348, 0.520),
    ("M9", "BL+TM2+COS-S", 0.501, 0.697, 0.626, 0.608),
    ("M10", "BL+TM2+COS-S+FL2", 0.439, 0.670, 0.600, 0.570),
    ("M11", "BL+TM2+COS-S+FL4", 0.473, 0.683, 0.647, 0.601),
    ("M12", "BL+TM2+COS-S+RW", 0.459, 0.743, 0.549, 0.584),
)
# Table 1 of the report (test): the predictions of its best dev row
TABLE1: dict[str, ReportRow] = _rows("test", ("M7", "BL+TM1+COS-S+FL4", 0.501, 0.781, 0.642, 0.641))
BEST_DEV_ROW = "M7"

METRIC_NAMES = {"sst_accuracy": "SST acc", "quora_accuracy": "Quora acc", "sts_pearson": "STS r",
                "mean_score": "overall"}


def report_table() -> dict[str, dict[str, float]]:
    """Table 2 as a findings table: the findings checked on the report's own numbers all agree."""
    return {name: row.scores() for name, row in TABLE2.items()}


# --- findings -----------------------------------------------------------------------------

@dataclass
class Comparison:
    """One comparison of a finding: metric of row `a` against row `b`, on the report's and the kit's table."""
    text: str                        # e.g. "Quora: M8 below M1"
    metric: str
    a: str
    b: str
    holds: Callable[[float, float], bool]
    report: tuple[float, float] | None = None
    kit: tuple[float, float] | None = None

    @property
    def kit_agrees(self) -> bool | None:
        return None if self.kit is None else self.holds(*self.kit)

    def line(self) -> str:
        def pair(values):
            return "not run" if values is None else f"{values[0]:.3f} vs {values[1]:.3f} ({values[0] - values[1]:+.3f})"
        verdict = {True: "agrees", False: "disagrees", None: "not run"}[self.kit_agrees]
        return f"{self.text}: report {pair(self.report)}; kit {pair(self.kit)} -> {verdict}"


@dataclass
class FindingResult:
    number: int
    statement: str
    comparisons: list[Comparison]

    @property
    def verdict(self) -> str:
        """agree (every comparison holds on the kit's table), disagree (none does), partly, or not run."""
        results = [c.kit_agrees for c in self.comparisons]
        if any(r is None for r in results):
            return "not run"
        if all(results):
            return "agree"
        return "disagree" if not any(results) else "partly"


def _lower(a: float, b: float) -> bool:
    return a < b


def _higher(a: float, b: float) -> bool:
    return a > b


def _collapse(a: float, b: float) -> bool:
    return a < b - COLLAPSE


def _at_least(a: float, b: float) -> bool:
    return a >= b


COLLAPSE = 0.05  # a drop of Quora accuracy by more than this counts as COS-P's collapse


def _best_of(rows: list[str], table: dict, metric: str) -> str | None:
    """The row of `rows` other than the first with the highest metric (None if one is missing)."""
    if any(row not in table for row in rows):
        return None
    return max(rows[1:], key=lambda row: table[row][metric])


def findings_definitions() -> list[tuple[str, list[Comparison]]]:
    """The six findings of ../shared/report/README.md ("Findings the report draws from Table 2"), each
    as comparisons between two rows' numbers."""
    return [
        ("TM1 beats TM2 on Quora (M1 vs M8: -0.060; M3 vs M9: -0.081); SST and STS about equal",
         [Comparison("Quora: M8 (TM2) below M1 (TM1)", "quora_accuracy", "M8", "M1", _lower),
          Comparison("Quora: M9 (TM2) below M3 (TM1)", "quora_accuracy", "M9", "M3", _lower)]),
        ("COS-S lifts STS from 0.369 (M1) to 0.599 (M3); SST and Quora unchanged",
         [Comparison("STS: M3 (COS-S) above M1", "sts_pearson", "M3", "M1", _higher)]),
        (f"COS-P collapses Quora (0.778 -> 0.584, M3 vs M4); here: a drop of more than {COLLAPSE}",
         [Comparison(f"Quora: M4 (COS-P) more than {COLLAPSE} below M3", "quora_accuracy", "M4", "M3", _collapse)]),
        ("MNR: Quora -0.008, STS +0.023 (M2 vs M1); M5 vs M3 slightly better SST and STS, Quora -0.007",
         [Comparison("STS: M2 (MNR) above M1", "sts_pearson", "M2", "M1", _higher),
          Comparison("Quora: M2 (MNR) below M1", "quora_accuracy", "M2", "M1", _lower),
          Comparison("STS: M5 (MNR) above M3", "sts_pearson", "M5", "M3", _higher),
          Comparison("Quora: M5 (MNR) below M3", "quora_accuracy", "M5", "M3", _lower)]),
        ("FL2 lowers the overall score a little (M6 vs M3: -0.001; M10 vs M9: -0.038); FL4 is the best row "
         "(M7) with TM1, while with TM2 no freezing (M9) stays best",
         [Comparison("overall: M6 (FL2) below M3", "mean_score", "M6", "M3", _lower),
          Comparison("overall: M10 (FL2) below M9", "mean_score", "M10", "M9", _lower),
          Comparison("overall: M7 (FL4) at least the best other TM1 row (M1-M6)", "mean_score", "M7",
                   "best of M1-M6", _at_least),
          Comparison("overall: M9 (no freezing) at least the best of M10, M11", "mean_score", "M9",
                   "best of M10-M11", _at_least)]),
        ("RW (M12 vs M9) raises Quora (+0.046) and lowers SST and STS",
         [Comparison("Quora: M12 (RW) above M9", "quora_accuracy", "M12", "M9", _higher),
          Comparison("SST: M12 (RW) below M9", "sst_accuracy", "M12", "M9", _lower),
          Comparison("STS: M12 (RW) below M9", "sts_pearson", "M12", "M9", _lower)]),
    ]


GROUPS = {"best of M1-M6": ["M7", "M1", "M2", "M3", "M4", "M5", "M6"], "best of M10-M11": ["M9", "M10", "M11"]}


def _values(comparison: Comparison, table: dict) -> tuple[float, float] | None:
    b = comparison.b
    if b in GROUPS:
        b = _best_of(GROUPS[b], table, comparison.metric)
        if b is None:
            return None
    if comparison.a not in table or b not in table:
        return None
    return table[comparison.a][comparison.metric], table[b][comparison.metric]


def check_findings(kit: dict[str, dict[str, float]]) -> list[FindingResult]:
    """Each finding of the report, its comparisons computed on the report's Table 2 and on `kit`."""
    report = report_table()
    results = []
    for number, (statement, comparisons) in enumerate(findings_definitions(), start=1):
        for comparison in comparisons:
            comparison.report = _values(comparison, report)
            comparison.kit = _values(comparison, kit)
        results.append(FindingResult(number, statement, comparisons))
    return results


def findings_markdown(results: list[FindingResult]) -> str:
    """The findings check as Markdown: each finding, its verdict, and every comparison with its numbers."""
    counted = [r.verdict for r in results]
    lines = [f"Findings check: the kit's table agrees with {counted.count('agree')} of the report's "
             f"{len(results)} findings (partly: {counted.count('partly')}, disagrees: {counted.count('disagree')}, "
             f"not run: {counted.count('not run')}).", ""]
    for result in results:
        lines.append(f"{result.number}. **{result.verdict}**: {result.statement}")
        for comparison in result.comparisons:
            lines.append(f"   - {comparison.line()}")
    return "\n".join(lines) + "\n"
