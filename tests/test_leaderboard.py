"""`minbert export-leaderboard`: a run's predictions in the CS224N starter's file names and format."""
from minbert_lib.cli import main
from minbert_lib.evaluate import prediction_filename, write_predictions


def fake_run(folder):
    """A run folder as minbert train leaves it, without Quora test predictions (the mirror lacks the file)."""
    write_predictions(folder / prediction_filename("sst", "dev"), ["s1", "s2"], [3, 0])
    write_predictions(folder / prediction_filename("sst", "test"), ["t1"], [4])
    write_predictions(folder / prediction_filename("quora", "dev"), ["q1", "q2"], [1, 0])
    write_predictions(folder / prediction_filename("sts", "dev"), ["p1", "p2"], [4.75, 0.1])
    write_predictions(folder / prediction_filename("sts", "test"), ["r1"], [2.0])
    return folder


def test_export_writes_the_starters_names_and_format(tmp_path, capsys):
    run = fake_run(tmp_path / "run")
    out = tmp_path / "predictions"
    assert main(["export-leaderboard", str(run), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["para-dev-output.csv", "sst-dev-output.csv",
                                                     "sst-test-output.csv", "sts-dev-output.csv", "sts-test-output.csv"]
    # byte for byte what the starter's evaluation.py writes: header with a tab, rows "id , value "
    assert (out / "sst-dev-output.csv").read_text() == "id \t Predicted_Sentiment \ns1 , 3 \ns2 , 0 \n"
    assert (out / "para-dev-output.csv").read_text() == "id \t Predicted_Is_Paraphrase \nq1 , 1.0 \nq2 , 0.0 \n"
    assert (out / "sts-dev-output.csv").read_text() == "id \t Predicted_Similiary \np1 , 4.75 \np2 , 0.1 \n"
    assert (out / "sts-test-output.csv").read_text() == "id \t Predicted_Similiary \nr1 , 2.0 \n"
    printed = capsys.readouterr().out
    assert "para-test-output.csv: skipped, the run has no quora-test-predictions.csv" in printed


def test_default_folder_and_errors(tmp_path, capsys):
    run = fake_run(tmp_path / "run")
    assert main(["export-leaderboard", str(run)]) == 0
    assert (run / "predictions" / "sst-test-output.csv").is_file()
    (tmp_path / "empty").mkdir()
    assert main(["export-leaderboard", str(tmp_path / "empty")]) == 1
    assert "holds no prediction files" in capsys.readouterr().err
    (tmp_path / "afile").write_text("x")
    assert main(["export-leaderboard", str(run), "--out", str(tmp_path / "afile")]) == 1
    assert "is a file: give a folder" in capsys.readouterr().err


def test_the_starters_format_comes_from_the_task_table(tmp_path, monkeypatch):
    """A task is exported in the format its Task.starter names: here cfimdb, which the kit gives none."""
    import dataclasses

    from minbert_lib.registry import TASKS as REGISTRY_TASKS
    from minbert_lib.tasks import TASKS, StarterFormat

    assert set(REGISTRY_TASKS) <= set(TASKS)  # the registry's tasks are the table's with upstream files
    monkeypatch.setitem(TASKS, "cfimdb", dataclasses.replace(TASKS["cfimdb"], starter=StarterFormat(
        "imdb", "Predicted_Class", integers=True)))
    run = fake_run(tmp_path / "run")
    write_predictions(run / prediction_filename("cfimdb", "dev"), ["c1"], [1])
    assert main(["export-leaderboard", str(run), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "imdb-dev-output.csv").read_text() == "id \t Predicted_Class \nc1 , 1 \n"
