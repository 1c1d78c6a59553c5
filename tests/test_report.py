"""The report's numbers in the kit (minbert_lib/report.py) against ../shared/report/tables.csv, and the findings check."""
import csv
from pathlib import Path

import pytest

from minbert_lib import report
from minbert_lib.experiments import EXPERIMENTS, REPORT_DEV

TABLES_CSV = Path(__file__).resolve().parents[1] / ".." / "shared" / "report" / "tables.csv"


@pytest.mark.skipif(not TABLES_CSV.exists(), reason="../shared/report/tables.csv is not on this machine")
def test_report_numbers_and_row_definitions_match_the_shared_tables():
    with open(TABLES_CSV, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    tables = {"1": report.TABLE1, "2": report.TABLE2}
    seen = {"1": set(), "2": set()}
    for row in rows:
        kit = tables[row["table"]][row["row"]]
        seen[row["table"]].add(row["row"])
        assert (kit.extensions, kit.split) == (row["extensions"], row["split"]), row
        assert (kit.sst, kit.quora, kit.sts, kit.overall) == tuple(
            float(row[key]) for key in ("sst_acc", "quora_acc", "sts_pearson", "overall_plain_mean")), row
        if row["table"] == "2":  # the kit trains each Table 2 row as the report defines it
            assert EXPERIMENTS[row["row"]].description == row["extensions"]
    assert seen == {"1": set(report.TABLE1), "2": set(report.TABLE2)}


def test_experiments_use_mnr_exactly_where_the_report_does():
    for name in report.TABLE2:
        assert EXPERIMENTS[name].mnr == ("MNR" in report.TABLE2[name].extensions), name
    assert not EXPERIMENTS["M6"].mnr and EXPERIMENTS["M6"].freeze_last == 2
    assert not EXPERIMENTS["M7"].mnr and EXPERIMENTS["M7"].freeze_last == 4
    assert REPORT_DEV["M7"] == (0.452, 0.779, 0.674) and len(REPORT_DEV) == 13


def test_every_finding_agrees_on_the_reports_own_table():
    results = report.check_findings(report.report_table())
    assert len(results) == 6
    assert [r.verdict for r in results] == ["agree"] * 6
    for result in results:
        for comparison in result.comparisons:
            assert comparison.report == comparison.kit


def test_findings_name_the_numbers_they_compared_and_missing_rows():
    table = report.report_table()
    table["M12"] = {**table["M12"], "quora_accuracy": 0.600}  # RW lowers Quora here: disagrees on that comparison
    del table["M4"]
    results = report.check_findings(table)
    assert results[5].verdict == "partly" and results[2].verdict == results[4].verdict == "not run"
    text = report.findings_markdown(results)
    assert "Quora: M12 (RW) above M9: report 0.743 vs 0.697 (+0.046); kit 0.600 vs 0.697 (-0.097) -> disagrees" in text
    assert "kit not run -> not run" in text
    assert text.startswith("Findings check: the kit's table agrees with 3 of the report's 6 findings")  # M4 is in FL4's comparison too
