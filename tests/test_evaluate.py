"""Metrics against hand-computed values, the overall scores, and prediction files."""
import math
from collections import Counter

import numpy as np
import pytest
import torch

from minbert_lib.data import read_split
from minbert_lib.evaluate import (MultitaskScores, accuracy, confusion_matrix, macro_f1, pearson,
                                  prediction_filename, read_predictions, write_predictions)

GOLD = [0, 0, 1, 1, 2, 2]
PREDICTED = [0, 1, 1, 1, 2, 0]


def test_accuracy_by_hand():
    assert accuracy(GOLD, PREDICTED) == pytest.approx(4 / 6)
    assert accuracy(torch.tensor([1, 0]), np.array([1, 1])) == 0.5


def test_confusion_matrix_rows_are_gold_columns_predicted():
    expected = np.array([[1, 1, 0],
                         [0, 2, 0],
                         [1, 0, 1]])
    matrix = confusion_matrix(GOLD, PREDICTED, num_classes=3)
    assert matrix.dtype == np.int64 and (matrix == expected).all()
    assert confusion_matrix([0, 1], [1, 1], num_classes=5).shape == (5, 5)
    with pytest.raises(ValueError, match="predicted classes must lie in 0..1"):
        confusion_matrix([0, 1], [0, 2], num_classes=2)


def test_macro_f1_by_hand():
    # class 0: P 1/2, R 1/2 -> F1 1/2; class 1: P 2/3, R 1 -> 4/5; class 2: P 1, R 1/2 -> 2/3
    assert macro_f1(GOLD, PREDICTED) == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    # a class that is predicted but never gold counts, with F1 0
    assert macro_f1([0, 0], [0, 1]) == pytest.approx((2 / 3 + 0) / 2)


def test_pearson_by_hand():
    # x - mean = (-1, 0, 1), y - mean = (-1, 1, 0): covariance 1, variances 2 and 2 -> r = 1 / 2
    assert pearson([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert pearson([0.0, 1.0, 2.0, 5.0], [10, 12, 14, 20]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert pearson([1, 2, 3], [2, 2, 2]) == 0.0  # constant predictions: defined as 0, not NaN


def test_lengths_must_agree():
    with pytest.raises(ValueError, match="3 gold labels but 2 predictions"):
        accuracy([1, 2, 3], [1, 2])


def test_overall_scores_plain_mean_and_leaderboard():
    scores = MultitaskScores(sst_accuracy=0.5, sst_macro_f1=0.4, quora_accuracy=0.8, sts_pearson=0.6)
    assert scores.mean_score == pytest.approx((0.5 + 0.8 + 0.6) / 3)
    assert scores.leaderboard_score == pytest.approx((0.5 + 0.8 + 0.8) / 3)
    assert scores.as_dict()["leaderboard_score"] == scores.leaderboard_score
    summary = scores.summary()
    assert "plain mean (as in the report): 0.633" in summary
    assert "leaderboard formula mean(SST, Quora, (STS+1)/2): 0.700" in summary


def test_majority_class_floors_on_dev(mirror):
    for task, floor in (("sst", 0.2625), ("quora", 0.6247)):
        gold = [e.label for e in read_split(task, "dev", mirror).examples]
        majority = Counter(gold).most_common(1)[0][0]
        assert accuracy(gold, [majority] * len(gold)) == pytest.approx(floor, abs=1e-4)


def test_prediction_file_round_trip(tmp_path):
    path = tmp_path / "out" / prediction_filename("sts", "dev")
    assert path.name == "sts-dev-predictions.csv"
    write_predictions(path, ["b2", "a1", "c3"], torch.tensor([0.1, 4.75, 2.0], dtype=torch.float64))
    assert path.read_text().splitlines() == ["id,prediction", "b2,0.1", "a1,4.75", "c3,2.0"]
    assert read_predictions(path) == {"b2": 0.1, "a1": 4.75, "c3": 2.0}
    write_predictions(path, ["x", "y"], np.array([3, 0]))
    assert read_predictions(path) == {"x": 3, "y": 0}
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_prediction_files_are_readable_by_others_like_the_runs_other_files(tmp_path):
    import os

    old_mask = os.umask(0o022)
    try:
        path = write_predictions(tmp_path / prediction_filename("sst", "test", partial=True), ["a"], [1])
        other = tmp_path / "settings.json"
        other.write_text("{}")
    finally:
        os.umask(old_mask)
    assert path.name == "sst-test-partial-predictions.csv"
    assert path.stat().st_mode & 0o777 == 0o644 == other.stat().st_mode & 0o777


def test_bad_predictions_leave_the_old_file_untouched(tmp_path):
    path = write_predictions(tmp_path / "sst-dev-predictions.csv", ["a", "b"], [1, 2])
    before = path.read_bytes()
    for ids, values, message in ((["a", "a"], [1, 2], "occur more than once"),
                                 (["a", "b"], [1], "2 ids but 1 predictions"),
                                 (["a", "b"], [1, math.nan], "not a finite number"),
                                 (["a", "b"], [1, "2"], "not an int class or a float score")):
        with pytest.raises(ValueError, match=message):
            write_predictions(path, ids, values)
    assert path.read_bytes() == before


def test_reading_a_bad_prediction_file_names_file_and_line(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("id , Predicted_Sentiment\na,1\n")
    with pytest.raises(ValueError, match=r"p\.csv, line 1: header .* should be id,prediction"):
        read_predictions(path)
    path.write_text("id,prediction\na,1\nb,high\n")
    with pytest.raises(ValueError, match=r"p\.csv, line 3: 'high' is not a finite number"):
        read_predictions(path)
