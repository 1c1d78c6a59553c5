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
