"""The task table: each task's labels, predictions, metrics and floor, and a fourth task added through it."""
import json
from pathlib import Path

import pytest
import torch

from minbert_lib.build import TrainSettings, train
from minbert_lib.config import model_config
from minbert_lib.data import load_split
from minbert_lib.losses import sentiment_loss
from minbert_lib.model import BertModel
from minbert_lib.multitask import HeadConfig, MultitaskBert
from minbert_lib.optim import AdamW
from minbert_lib.plots import curve_data
from minbert_lib.registry import FILES
from minbert_lib.schedules import Schedule, tm1_epoch
from minbert_lib.tasks import REPORT_TASKS, TASKS, Task, get_task
from minbert_lib.train import batch_loss

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"

# A task of our own: how long is a sentence? 0: under 10 words, 1: under 20, 2: longer.
LENGTH = Task("length", "sentence length", ("sentence",), "length_class", num_classes=3, loss=sentiment_loss,
              metric_names=("accuracy", "macro_f1"), head="own", output_size=3,
              files={"train": "length-train.csv", "dev": "length-dev.csv", "test": "length-test.csv"})


def length_class(sentence: str) -> int:
    words = len(sentence.split())
    return 0 if words < 10 else 1 if words < 20 else 2


def test_labels_are_typed_by_kind_and_out_of_range_ones_refused():
    assert get_task("sst").parse_label("4") == 4 and get_task("quora").parse_label("1.0") == 1
    assert get_task("sts").parse_label("3.8") == 3.8 and get_task("cfimdb").parse_label("0") == 0
    for task, text in [("sst", "5"), ("sst", "-1"), ("quora", "2.0"), ("quora", "0.5"), ("sts", "5.2"),
                       ("sts", "nan"), ("sst", "inf"), ("cfimdb", "2"), ("sst", "")]:
        with pytest.raises(ValueError):
            get_task(task).parse_label(text)


def test_predictions_metrics_and_floors_follow_the_label_kind():
    logits = torch.tensor([[0.1, 2.0, 0.0, 0.0, 0.0], [3.0, 0.0, 0.0, 0.0, 0.0]])
    assert get_task("sst").predict(logits).tolist() == [1, 0]
    assert get_task("quora").predict(torch.tensor([-0.2, 0.3])).tolist() == [0, 1]
    assert get_task("sts").predict(torch.tensor([-1.0, 2.5, 7.0])).tolist() == [0.0, 2.5, 5.0]
    assert set(get_task("sst").metrics([0, 1, 2], [0, 1, 1])) == {"accuracy", "macro_f1"}
    assert get_task("quora").metrics([0, 1], [0, 1]) == {"accuracy": 1.0}
    assert get_task("sts").metrics([1, 2, 3], [1, 3, 2]) == {"pearson": pytest.approx(0.5)}
    assert get_task("sst").floor([0, 3, 3, 1]) == 0.5 and get_task("sts").floor([1.0, 2.0]) == 0.0
    assert [get_task(t).metric_key for t in REPORT_TASKS] == ["sst_accuracy", "quora_accuracy", "sts_pearson"]


def test_an_unknown_task_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown task 'imdb': choose one of sst, quora, sts, cfimdb"):
        get_task("imdb")


def test_a_pair_task_of_its_own_and_a_sentence_task_of_its_own_get_heads_that_learn(monkeypatch):
    """The model builds heads for tasks of head="own" and trains them through the table's losses."""
    same_first_token = Task("same", "pairs that start alike", ("sentence1", "sentence2"), "same", num_classes=2,
                            loss=get_task("quora").loss, metric_names=("accuracy",), head="own")
    monkeypatch.setitem(TASKS, "length", LENGTH)
    monkeypatch.setitem(TASKS, "same", same_first_token)
    torch.manual_seed(0)
    model = MultitaskBert(BertModel(model_config("tiny", hidden_dropout=0.0, attention_dropout=0.0)),
                          HeadConfig(dropout=0.0), tasks=REPORT_TASKS + ("length", "same"))
    assert set(model.own_heads) == {"length", "same"}
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 512, (3, 8, 6), generator=generator)
    a, b, sentence = ({"input_ids": x, "attention_mask": torch.ones_like(x), "token_type_ids": torch.zeros_like(x)}
                      for x in ids)
    batches = {"length": {**sentence, "labels": torch.arange(8) % 3},
               "same": {"a": a, "b": b, "labels": torch.tensor([0, 1] * 4)}}
    optimizer = AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    before = {task: batch_loss(model, task, batch, None).item() for task, batch in batches.items()}
    for _ in range(200):
        optimizer.zero_grad()
        sum(batch_loss(model, task, batch, None) for task, batch in batches.items()).backward()
        optimizer.step()
    for task, batch in batches.items():
        assert batch_loss(model, task, batch, None).item() < 0.05 * before[task], task
        predicted = get_task(task).predict(model.task_outputs(get_task(task), batch))
        assert predicted.tolist() == batch["labels"].tolist(), task


def write_length_files(folder: Path) -> None:
    """length-{train,dev,test}.csv from SST's sentences, laid out like the course files."""
    for split, source in (("train", "train"), ("dev", "dev"), ("test", "dev")):
        rows = ["\tid\tsentence" + ("" if split == "test" else "\tlength_class")]
        for index, example in enumerate(load_split("sst", source, DATA_DIR)[:400]):
            label = "" if split == "test" else f"\t{length_class(example.text)}"
            rows.append(f"{index}\tlen{index}\t{example.text}{label}")
        (folder / LENGTH.files[split]).write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_a_fourth_task_added_to_the_table_is_trained_scored_and_predicted(tmp_path, monkeypatch):
    """One Task in the table and a Schedule that names it: the run trains its head beside the report's
    three, records its scores and floor, draws its curve and writes its prediction files."""
    if not (DATA_DIR / "ids-sst-dev.csv").is_file():
        pytest.skip(f"no course data at {DATA_DIR}")
    data = tmp_path / "data"
    data.mkdir()
    for entry in (f for f in FILES if f.task in REPORT_TASKS and (DATA_DIR / f.name).is_file()):
        (data / entry.name).symlink_to(DATA_DIR / entry.name)
    write_length_files(data)
    monkeypatch.setitem(TASKS, "length", LENGTH)
    four_tasks = Schedule(REPORT_TASKS + ("length",), tm1_epoch,
                          lambda streams: max(s.batches_per_pass for s in streams.values()))
    settings = TrainSettings(experiment="M8", budget="quick", model="tiny", run_dir=str(tmp_path / "run"),
                             data_dir=str(data), epochs=1, progress=False, bf16=False)
    run = train(settings, schedule=four_tasks)

    history = json.loads((run / "history.json").read_text())
    assert set(history["epochs"][-1]["train_loss"]) == {"sst", "quora", "sts", "length"}
    gold = {f"len{i}": length_class(e.text) for i, e in enumerate(load_split("sst", "dev", DATA_DIR)[:400])}
    dev_ids = [row.split(",")[0] for row in (run / "length-dev-predictions.csv").read_text().splitlines()[1:]]
    dev_labels = [gold[i] for i in dev_ids]  # the quick budget's dev sample
    assert history["floors"]["length_accuracy"] == pytest.approx(max(map(dev_labels.count, range(3))) / len(dev_labels))
    scores = json.loads((run / "best-dev-scores.json").read_text())
    assert 0.0 <= scores["length_accuracy"] <= 1.0 and "length_macro_f1" in scores
    assert scores["mean_score"] == pytest.approx((scores["sst_accuracy"] + scores["quora_accuracy"]
                                                  + scores["sts_pearson"]) / 3)  # the report's three only
    assert len(json.loads((run / "confusion.json").read_text())["length"]) == 3
    for name in ("length-dev-predictions.csv", "length-test-partial-predictions.csv"):  # quick cuts the test file
        predictions = (run / name).read_text().splitlines()
        assert predictions[0] == "id,prediction" and {row.split(",")[1] for row in predictions[1:]} <= {"0", "1", "2"}
    panels = curve_data(history)
    assert list(panels) == ["sst_accuracy", "quora_accuracy", "sts_pearson", "length_accuracy", "loss"]
    assert panels["length_accuracy"]["floor"] == history["floors"]["length_accuracy"]
    assert (run / "learning_curves.png").is_file() and (run / "confusion_matrices.png").is_file()
    state = torch.load(run / "best.pt", weights_only=True)["model"]
    assert {"own_heads.length.weight", "own_heads.length.bias"} <= set(state)
