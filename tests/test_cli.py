import subprocess
import sys


def run_minbert(*args):
    return subprocess.run([sys.executable, "-m", "minbert_lib.cli", *args], capture_output=True, text=True,
                          timeout=300)


def test_demo_prints_similarities_and_the_transformers_check():
    result = run_minbert("demo", "A man plays the guitar.", "Someone plays an instrument.", "Stocks fell.")
    assert result.returncode == 0, result.stderr
    assert "cosine similarity" in result.stdout
    assert "check against transformers.BertModel" in result.stdout and "-> OK" in result.stdout
    rows = [line for line in result.stdout.splitlines() if line.startswith("  [") and "." in line[6:]]
    similarity = [[float(v) for v in line.split()[1:]] for line in rows[-3:]]
    assert similarity[0][0] > 0.99  # a sentence is most like itself
    assert similarity[0][1] > similarity[0][2]  # guitar is closer to instrument than to stocks


def test_bad_model_path_is_one_line(tmp_path):
    result = run_minbert("demo", "--model", str(tmp_path / "missing"))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "is not a folder" in result.stderr


def test_rows_are_parsed_from_ranges_and_lists():
    from minbert_lib.experiments import parse_rows
    assert parse_rows("M0-M3") == ["M0", "M1", "M2", "M3"]
    assert parse_rows("m1, M7,best") == ["M1", "M7", "best"]
    assert parse_rows("M2-M3,M12") == ["M2", "M3", "M12"]


def test_bad_rows_are_one_line_naming_the_mistake():
    for rows, message in [("M3-M1", "'M3-M1' is not a range"), ("M1-", "'M1-' is not a range"),
                          ("M1-M2-M3", "is not a range"), (",", "names no rows"), ("M13", "unknown rows ['M13']")]:
        result = run_minbert("reproduce", "--rows", rows, "--budget", "quick", "--model", "tiny")
        assert result.returncode == 1, rows
        assert result.stderr.strip().count("\n") == 0, result.stderr
        assert message in result.stderr, result.stderr


def test_zero_epochs_is_one_line_not_a_silent_default():
    result = run_minbert("train", "--epochs", "0", "--budget", "quick", "--model", "tiny")
    assert result.returncode == 1
    assert result.stderr.strip() == "minbert: error: --epochs 0: a run trains at least 1 epoch"


def test_reproduce_into_a_file_is_one_line(tmp_path):
    (tmp_path / "table.md").write_text("mine")
    result = run_minbert("reproduce", "--rows", "M0", "--budget", "quick", "--model", "tiny", "--out",
                         str(tmp_path / "table.md"))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "table.md is a file" in result.stderr, result.stderr
    assert (tmp_path / "table.md").read_text() == "mine"


def test_the_older_name_of_budget_still_parses_and_help_shows_one_name():
    older = run_minbert("train", "--epochs", "0", "--preset", "quick", "--model", "tiny")  # as results/ records it
    assert older.stderr.strip() == "minbert: error: --epochs 0: a run trains at least 1 epoch"
    shown = run_minbert("train", "--help").stdout
    assert "--budget" in shown and "--preset" not in shown
