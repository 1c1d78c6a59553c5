"""Training: overfitting a batch, MNR batches, layer-wise learning rates, exact resume, the CLI end to end."""
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from minbert_lib.config import model_config
from minbert_lib.data import Example
from minbert_lib.losses import cosent_loss, paraphrase_loss, sentiment_loss, similarity_loss
from minbert_lib.model import BertModel
from minbert_lib.multitask import HeadConfig, MultitaskBert
from minbert_lib.optim import AdamW
from minbert_lib.errors import ConfigError, MinbertError, TrainingInterrupted
from minbert_lib.experiments import get_experiment, get_budget
import minbert_lib.build as build_module
import minbert_lib.train as train_module
from minbert_lib.batching import mnr_batches
from minbert_lib.build import TrainSettings, definition, make_lr_schedule, make_optimizer, train
from minbert_lib.runs import changed_since

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


def random_encoding(generator, batch=8, length=6, vocab=512):
    ids = torch.randint(5, vocab, (batch, length), generator=generator)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}


@pytest.mark.parametrize("heads", [HeadConfig(), HeadConfig(paraphrase_head="cross", similarity_head="cos",
                                                            pooling="mean"),
                                   HeadConfig(paraphrase_head="cos-scaled", similarity_head="cos", pooling="mean"),
                                   HeadConfig(paraphrase_head="cos-cross", similarity_head="cos", pooling="mean")])
def test_tiny_model_overfits_eight_examples_on_every_head(heads):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = MultitaskBert(BertModel(model_config("tiny", hidden_dropout=0.0, attention_dropout=0.0)),
                          HeadConfig(**{**heads.to_dict(), "dropout": 0.0}))
    a, b = random_encoding(generator), random_encoding(generator)
    # Quora gets its own pairs, as in real data: a bi-encoder scores both pair tasks by cos(u, v),
    # so one set of pairs cannot carry alternating paraphrase labels and rising similarity labels.
    c, d = random_encoding(generator), random_encoding(generator)
    sentiment_labels = torch.arange(8) % 5
    paraphrase_labels = torch.tensor([0, 1] * 4)
    similarity_labels = torch.linspace(1.0, 4.5, 8)  # away from 0, where 5 * relu(cos) has no gradient
    pair = {k: torch.cat([c[k], d[k]], dim=1) for k in c}
    pair["token_type_ids"][:, 6:] = 1
    optimizer = AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)

    def losses():
        paraphrase = (model.paraphrase_logits(pair=pair) if heads.paraphrase_head == "cross"
                      else model.paraphrase_logits(c, d, pair))
        return {"sst": sentiment_loss(model.sentiment_logits(a), sentiment_labels),
                "quora": paraphrase_loss(paraphrase, paraphrase_labels),
                "sts": similarity_loss(model.similarity_scores(a, b), similarity_labels)}

    before = {k: v.item() for k, v in losses().items()}
    for _ in range(300):
        optimizer.zero_grad()
        sum(losses().values()).backward()
        optimizer.step()
    after = {k: v.item() for k, v in losses().items()}
    for task in after:
        assert after[task] < 0.05 * before[task] and after[task] < 0.05, (task, before[task], after[task])


def test_cosent_on_the_cos_s_head_ranks_cosines_not_five_times_cosines():
    """CoSENT's scale 20 is meant for cosines: COS-S predicts 5 cos, which would make it 100."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    model = MultitaskBert(BertModel(model_config("tiny")), HeadConfig(similarity_head="cos", pooling="mean")).eval()
    a, b = random_encoding(generator), random_encoding(generator)
    labels = torch.linspace(0.0, 5.0, 8)
    experiment = SimpleNamespace(similarity_loss="cosent")
    cosines = torch.nn.functional.cosine_similarity(model.embed(a), model.embed(b), dim=-1).clamp(min=0)
    loss = train_module.batch_loss(model, "sts", {"a": a, "b": b, "labels": labels}, experiment)
    assert torch.allclose(loss, cosent_loss(cosines, labels), atol=1e-5)


def test_mnr_batches_never_repeat_a_sentence_and_cover_every_pair():
    examples = [Example(str(i), f"question {i % 10}", f"answer {i}", 1) for i in range(40)]
    batches = mnr_batches(examples, batch_size=5, seed=0)
    for batch in batches:
        texts = [examples[i].text for i in batch] + [examples[i].text_b for i in batch]
        assert len(texts) == len(set(texts))
    assert sorted(i for batch in batches for i in batch) == list(range(40))


def test_layerwise_decay_gives_lower_layers_smaller_rates():
    model = MultitaskBert(BertModel(model_config("tiny")))
    optimizer = make_optimizer(model, lr=1e-3, layerwise_decay=0.5)
    rate_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    assert rate_of[id(model.sentiment.weight)] == 1e-3
    assert rate_of[id(model.encoder.layers[1].ffn_norm.weight)] == pytest.approx(5e-4)
    assert rate_of[id(model.encoder.layers[0].ffn_norm.weight)] == pytest.approx(2.5e-4)
    assert rate_of[id(model.encoder.embeddings.word_embeddings.weight)] == pytest.approx(1.25e-4)


def test_heads_learn_at_their_own_rate_and_the_encoder_keeps_its_own():
    model = MultitaskBert(BertModel(model_config("tiny")))
    optimizer = make_optimizer(model, lr=1e-4, head_lr_scale=20.0)
    rate_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    for head in (model.sentiment, model.paraphrase, model.similarity):
        assert all(rate_of[id(p)] == pytest.approx(2e-3) for p in head.parameters())
    encoder_rates = {rate_of[id(p)] for p in model.encoder.parameters()}
    assert encoder_rates == {1e-4}


def rates_before_each_step(kind, total_steps, model):
    optimizer = make_optimizer(model, lr=1e-3, layerwise_decay=0.5, fused=False)
    schedule = make_lr_schedule(optimizer, kind, total_steps)
    rates = []
    for _ in range(total_steps):
        rates.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        schedule.step()
    return rates, [group["lr"] for group in optimizer.param_groups]


def test_linear_schedule_warms_up_for_a_tenth_of_the_steps_then_decays_to_zero():
    model = MultitaskBert(BertModel(model_config("tiny")))
    base = [group["lr"] for group in make_optimizer(model, lr=1e-3, layerwise_decay=0.5).param_groups]
    rates, after_last = rates_before_each_step("linear", 20, model)
    factors = [r[0] / base[0] for r in rates]  # warmup is 2 of 20 steps
    assert factors[:4] == pytest.approx([0.5, 1.0, 1.0, 17 / 18])
    assert factors[-1] == pytest.approx(1 / 18) and after_last == pytest.approx([0.0] * len(base))
    assert all(later < earlier for earlier, later in zip(factors[2:], factors[3:]))
    assert all(r == pytest.approx([f * b for b in base]) for r, f in zip(rates, factors))  # groups keep their ratios
    constant_rates, _ = rates_before_each_step("constant", 20, model)
    assert all(r == pytest.approx(base) for r in constant_rates)
    with pytest.raises(ConfigError, match="lr_schedule='cosine'"):
        rates_before_each_step("cosine", 20, model)


def tiny_run(run_dir, experiment=None, schedule=None, **overrides):
    """A run of the tiny model; `experiment` and `schedule`, where given, stand in for the named ones."""
    settings = TrainSettings(**{"experiment": experiment.name if experiment else "M8", "budget": "quick", "model": "tiny", "run_dir": str(run_dir),
                                "data_dir": str(DATA_DIR), "epochs": 2, "progress": False, "bf16": False, **overrides})
    return train(settings, experiment=experiment, schedule=schedule)


def test_run_minutes_cover_setup_and_every_epoch(tmp_path, monkeypatch):
    """A clock that moves one minute per reading: the run's minutes must exceed the sum of its epochs."""
    readings = iter(range(0, 10_000, 60))
    clock = SimpleNamespace(perf_counter=lambda: next(readings))
    monkeypatch.setattr(build_module, "time", clock)  # the run's minutes
    monkeypatch.setattr(train_module, "time", clock)  # each epoch's seconds
    run = tiny_run(tmp_path / "run")
    epoch_minutes = sum(r["seconds"] for r in json.loads((run / "history.json").read_text())["epochs"]) / 60
    assert epoch_minutes >= 2  # each epoch reads the clock at least twice (more with mid-epoch checkpoints)
    assert float((run / "minutes.txt").read_text()) > epoch_minutes


def test_lr_scale_sets_the_learning_rate_of_the_mnr_pass_and_of_fine_tuning(tmp_path, monkeypatch):
    doubled = dataclasses.replace(get_experiment("M5"), lr_scale=2.0)  # M5 has an MNR pass
    rates = []

    def recording_make_optimizer(model, lr, *args, **kwargs):
        rates.append(lr)
        return make_optimizer(model, lr, *args, **kwargs)

    monkeypatch.setattr(build_module, "make_optimizer", recording_make_optimizer)
    tiny_run(tmp_path / "run", experiment=doubled, epochs=1)
    assert rates == [2 * get_budget("quick").lr] * 2


def interrupt_at_step(monkeypatch, step: int) -> None:
    """Ctrl-C during the `step`-th optimizer step of this call."""
    real, calls = train_module.optimisation_step, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == step:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "optimisation_step", interrupted)


@pytest.mark.parametrize("lr_schedule", ["constant", "linear"])
def test_interrupted_and_resumed_run_ends_like_an_uninterrupted_one(tmp_path, monkeypatch, lr_schedule):
    """Stopped after epoch 1, then Ctrl-C in the middle of epoch 2, then resumed: the same run as one without a stop.
    The quick budget's TM2 epoch is 24 steps; 2 epochs evaluate and checkpoint every 48 // 8 = 6 steps."""
    scheduled = dataclasses.replace(get_experiment("M8"), lr_schedule=lr_schedule)
    whole = tiny_run(tmp_path / "whole", scheduled, keep_last=True)
    tiny_run(tmp_path / "resumed", scheduled, stop_after_epochs=1)
    interrupted_history = json.loads((tmp_path / "resumed" / "history.json").read_text())
    assert len(interrupted_history["epochs"]) == 1 and not (tmp_path / "resumed" / "best-dev-scores.json").exists()
    assert not (tmp_path / "resumed" / "minutes.txt").exists()  # written only when the run has finished
    with monkeypatch.context() as patch:
        interrupt_at_step(patch, 11)  # global step 35: the last checkpoint was at step 30
        with pytest.raises(TrainingInterrupted, match="^interrupted at step 34; run the same command again to "
                                                      "resume from step 30$"):
            tiny_run(tmp_path / "resumed", scheduled, keep_last=True)
    assert torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["step"] == 30
    resumed = tiny_run(tmp_path / "resumed", scheduled, keep_last=True)
    history_a = json.loads((whole / "history.json").read_text())
    history_b = json.loads((resumed / "history.json").read_text())
    for part in ("epochs", "evals"):
        assert [r["dev"] for r in history_a[part]] == [r["dev"] for r in history_b[part]]
        assert [r["train_loss"] for r in history_a[part]] == [r["train_loss"] for r in history_b[part]]
    assert [r["step"] for r in history_a["evals"]] == [6, 12, 18, 24, 30, 36, 42, 48]
    checkpoint_a = torch.load(whole / "last.pt", weights_only=True)
    state_a, state_b = checkpoint_a["model"], torch.load(resumed / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    # the trainer steps the schedule once per optimizer step: a linear schedule has reached 0 at the end
    final_rates = {group["lr"] for group in checkpoint_a["optimizer"]["param_groups"]}
    assert final_rates == ({0.0} if lr_schedule == "linear" else {get_budget("quick").lr})


def test_ctrl_c_prints_one_line_saying_where_to_resume(monkeypatch, capsys):
    from minbert_lib import cli

    def interrupted(settings):
        raise TrainingInterrupted("interrupted at step 7; run the same command again to resume from step 6")

    monkeypatch.setattr(build_module, "train", interrupted)
    assert cli.main(["train", "--budget", "quick", "--model", "tiny"]) == 130
    assert capsys.readouterr().err == "interrupted at step 7; run the same command again to resume from step 6\n"


def test_learning_curves_have_eight_points_a_floor_and_labelled_axes(tmp_path):
    from minbert_lib.plots import curve_data, learning_curves_figure, runs_figure

    run = tiny_run(tmp_path / "run", epochs=1)  # 24 steps: a dev evaluation every 3
    assert not (run / "last.pt").exists()  # removed once the run has finished
    history = json.loads((run / "history.json").read_text())
    panels = curve_data(history)
    for key in ("sst_accuracy", "quora_accuracy", "sts_pearson", "loss"):
        panel = panels[key]
        assert panel["xlabel"] == "optimizer steps (24 = 1 epoch)" and panel["ylabel"]
        for label, (x, y) in panel["series"].items():
            if not label.startswith("train sample"):
                assert len(x) == len(y) >= 8, (key, label)
                assert x == sorted(x) and x[-1] == 24
    assert panels["sst_accuracy"]["floor"] == history["floors"]["sst_accuracy"] > 0.2
    assert panels["sts_pearson"]["floor"] == 0.0
    figure = learning_curves_figure(history)
    for ax in figure.axes:
        assert ax.get_xlabel() and ax.get_ylabel()
    for ax in figure.axes[:3]:
        assert any(line.get_label().startswith(("majority class", "constant prediction")) for line in ax.lines)
    assert curve_data(history["epochs"])["sst_accuracy"]["xlabel"] == "epoch"  # an older kit's history
    compared = runs_figure({"first": history, "second": {**history, "evals": history["evals"][:4]}},
                           ["sts_pearson", "quora_accuracy"])  # notebook 06's comparisons of rows
    assert [ax.get_title() for ax in compared.axes] == ["STS Pearson (dev sample)", "Quora accuracy (dev sample)"]
    for ax in compared.axes:
        assert ax.get_xlabel() == "optimizer steps" and ax.get_ylabel()
        lengths = {line.get_label(): len(line.get_xdata()) for line in ax.lines}
        assert (lengths["first"], lengths["second"]) == (len(history["evals"]), 4)
        assert any(label.startswith(("majority class", "constant prediction")) for label in lengths)


def test_a_run_without_plots_writes_its_scores_but_no_figures(tmp_path):
    run = tiny_run(tmp_path / "run", epochs=1, plots=False)  # notebook 06 draws its own
    assert (run / "best-dev-scores.json").is_file() and (run / "confusion.json").is_file()
    assert not list(run.glob("*.png"))


def test_a_run_folder_of_another_definition_is_neither_resumed_nor_reused(tmp_path):
    tiny_run(tmp_path / "run", stop_after_epochs=1)
    same = TrainSettings(experiment="M8", budget="quick", model="tiny", epochs=2, bf16=False)  # as tiny_run
    assert changed_since(tmp_path / "run", definition(same)) == []
    assert changed_since(tmp_path / "run", definition(dataclasses.replace(same, seed=1, epochs=3))) == ["epochs", "seed"]
    with pytest.raises(ConfigError, match="epochs differ"):
        tiny_run(tmp_path / "run", epochs=3)


def test_resuming_with_another_eval_interval_or_bf16_is_refused_unless_the_run_did_not_record_them(tmp_path):
    tiny_run(tmp_path / "run", stop_after_epochs=1)
    same = TrainSettings(experiment="M8", budget="quick", model="tiny", epochs=2, bf16=False)  # as tiny_run
    assert changed_since(tmp_path / "run", definition(dataclasses.replace(same, eval_every=5))) == ["eval_every"]
    assert changed_since(tmp_path / "run", definition(dataclasses.replace(same, bf16=None))) == ["bf16"]
    assert changed_since(tmp_path / "run", definition(dataclasses.replace(same, overrides={"bf16": "false"}))) == ["budget"]
    with pytest.raises(ConfigError, match="eval_every differ"):
        tiny_run(tmp_path / "run", eval_every=5)
    with pytest.raises(ConfigError, match="bf16 differ"):
        tiny_run(tmp_path / "run", bf16=None)  # the quick budget's bf16, not --no-bf16
    settings_file = tmp_path / "run" / "settings.json"
    saved = json.loads(settings_file.read_text())
    del saved["settings"]["eval_every"], saved["settings"]["bf16"]  # as a kit without these settings wrote it
    settings_file.write_text(json.dumps(saved))
    assert changed_since(tmp_path / "run", definition(dataclasses.replace(same, eval_every=5, bf16=None))) == []


def test_running_a_finished_run_again_trains_nothing_and_keeps_its_files(tmp_path, capsys):
    run = tiny_run(tmp_path / "run", epochs=1)
    before = {path.name: path.stat().st_mtime_ns for path in run.iterdir()}
    assert tiny_run(tmp_path / "run", epochs=1) == run
    assert "finished: nothing to train" in capsys.readouterr().out
    assert {path.name: path.stat().st_mtime_ns for path in run.iterdir()} == before


def test_an_interrupted_run_can_be_plotted_before_it_finishes(tmp_path):
    from minbert_lib.plots import plot_run
    run = tiny_run(tmp_path / "run", stop_after_epochs=1)
    assert plot_run(run) == [run / "learning_curves.png"]  # no confusion matrices before the final scoring
    assert (run / "learning_curves.png").stat().st_size > 10_000
    with pytest.raises(MinbertError, match="has finished an epoch"):
        plot_run(tmp_path)


def test_a_run_saved_before_the_kit_gained_a_setting_counts_as_that_settings_default(tmp_path):
    tiny_run(tmp_path / "run", stop_after_epochs=1)
    settings_file = tmp_path / "run" / "settings.json"
    saved = json.loads(settings_file.read_text())
    del saved["experiment"]["head_lr_scale"], saved["budget"]["epoch_dev_sample"]  # as an older kit wrote it
    settings_file.write_text(json.dumps(saved))
    same = TrainSettings(experiment="M8", budget="quick", model="tiny", epochs=2, bf16=False)  # as tiny_run
    assert changed_since(tmp_path / "run", definition(same)) == []
    saved["experiment"]["head_lr_scale"] = 5.0  # a saved value that is not the default still counts
    settings_file.write_text(json.dumps(saved))
    assert changed_since(tmp_path / "run", definition(same)) == ["experiment"]


def test_a_run_saved_when_budgets_were_called_presets_is_the_same_run(tmp_path):
    tiny_run(tmp_path / "run", stop_after_epochs=1)
    settings_file = tmp_path / "run" / "settings.json"
    saved = json.loads(settings_file.read_text())
    saved["preset"] = saved.pop("budget")  # as kits until 2026-12-03 wrote it
    saved["settings"]["preset"] = saved["settings"].pop("budget")
    settings_file.write_text(json.dumps(saved))
    same = TrainSettings(experiment="M8", budget="quick", model="tiny", epochs=2, bf16=False)  # as tiny_run
    assert changed_since(tmp_path / "run", definition(same)) == []
    other = definition(dataclasses.replace(same, budget="cpu", overrides={"pooling": "cls", "head_lr_scale": "1"}))
    assert changed_since(tmp_path / "run", other) == ["budget"]  # without the cpu budget's recipe, only it differs


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "minbert_lib.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


@pytest.mark.slow
def test_quick_run_from_the_cli_writes_a_complete_run_folder(tmp_path):
    result = run_cli("train", "--experiment", "M3", "--budget", "quick", "--model", "tiny", "--no-bf16",
                     "--data-dir", str(DATA_DIR), "--run-dir", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "overall, plain mean (as in the report)" in result.stdout
    assert "Quora duplicate questions" in result.stdout
    run = tmp_path / "run"
    expected = {"settings.json", "history.json", "best.pt", "best-config.json", "best-dev-scores.json",
                "minutes.txt",
                "confusion.json", "learning_curves.png", "confusion_matrices.png",
                "sst-dev-predictions.csv", "sst-test-partial-predictions.csv", "quora-dev-predictions.csv",
                "sts-dev-predictions.csv", "sts-test-partial-predictions.csv", "partial-predictions.txt"}
    assert expected <= {p.name for p in run.iterdir()}
    assert "sst-test-partial-predictions.csv: 256 of the 2,210 examples of sst-test" in (
        run / "partial-predictions.txt").read_text()
    assert all(p.stat().st_mode & 0o044 == 0o044 for p in run.glob("*predictions.csv"))  # readable by others
    assert "quora-test-student.csv is missing" in result.stdout
    assert not (run / "last.pt").exists()  # removed once the run has finished (--keep-last keeps it)
    history = json.loads((run / "history.json").read_text())
    assert set(history["epochs"][0]["dev"]) >= {"sst_accuracy", "quora_accuracy", "sts_pearson", "mean_score"}
    assert len(history["evals"]) >= 8
    assert (run / "learning_curves.png").stat().st_size > 10_000


@pytest.mark.slow
@pytest.mark.pretrained
def test_the_demos_quick_run_learns_every_task(tmp_path, mirror, minilm_dir):
    """`make demo` trains the kit's best recipe with the quick budget: its best model must score SST
    at least 0.05 above always answering its dev sample's majority class, and STS above 0.5."""
    result = run_cli("train", "--experiment", "best", "--budget", "quick", "--data-dir", str(mirror),
                     "--run-dir", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    floors = json.loads((tmp_path / "run" / "history.json").read_text())["floors"]
    best = json.loads((tmp_path / "run" / "best-dev-scores.json").read_text())
    assert best["sst_accuracy"] >= floors["sst_accuracy"] + 0.05, (best, floors)
    assert best["quora_accuracy"] >= floors["quora_accuracy"] + 0.05, (best, floors)
    assert best["sts_pearson"] > 0.5, best


def test_reproduce_writes_the_table_with_the_report_beside_the_kit(tmp_path):
    result = run_cli("reproduce", "--rows", "M7,M12", "--budget", "quick", "--model", "tiny", "--epochs", "1", "--no-bf16",
                     "--data-dir", str(DATA_DIR), "--out", str(tmp_path / "table"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    table = (tmp_path / "table" / "table2.md").read_text()
    m7 = next(line for line in table.splitlines() if line.startswith("| M7 "))
    assert m7.startswith("| M7 | BL+TM1+COS-S+FL4 | ") and "| 0.452 | " in m7 and "| 0.779 | " in m7
    assert "| 0.674 | " in m7 and "| 0.635 | " in m7  # the report's overall as printed
    assert "Findings check: the kit's table agrees with" in table and "6. **not run**: RW" in table
    assert (tmp_path / "table" / "table2.png").stat().st_size > 10_000
    again = run_cli("findings", str(tmp_path / "table"), "--md", str(tmp_path / "again.md"), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again.md").read_text() == table  # the same table and findings from the saved JSON


def test_two_process_data_parallel_run_with_torchrun(tmp_path):
    """torchrun, gloo backend, 2 CPU processes: both finish and process 0 writes the run folder."""
    torchrun = Path(sys.executable).with_name("torchrun")
    result = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "minbert_lib.cli", "train",
         "--experiment", "M8", "--budget", "quick", "--model", "tiny", "--epochs", "1", "--no-bf16",
         "--data-dir", str(DATA_DIR), "--run-dir", str(tmp_path / "run")],
        capture_output=True, text=True, cwd=tmp_path, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    settings = json.loads((tmp_path / "run" / "settings.json").read_text())
    assert settings["processes"] == 2
    assert (tmp_path / "run" / "best-dev-scores.json").exists()
    assert result.stdout.count("epoch 1: dev SST") == 1  # only process 0 reports


def test_ablation_figure_and_table_without_report_numbers(tmp_path):
    from minbert_lib.plots import ablation_figure, ablation_markdown

    scores = {"sst_accuracy": 0.48, "quora_accuracy": 0.41, "sts_pearson": -0.05, "mean_score": 0.28}
    rows = [{"name": "M0", "description": "BL", "report": None, "kit": scores, "minutes": 12.2},
            {"name": "M8", "description": "BL+TM2", "report": None, "kit": None, "minutes": None}]
    ablation_figure(rows).savefig(tmp_path / "table2.png")
    table = ablation_markdown(rows)
    assert "| M0 | BL | 0.480 | - | 0.410 | - | -0.050 | - | 0.280 | - | 12.2 |" in table
    assert "| M8 | BL+TM2 | not run | - | not run | - | not run | - | not run | - | - |" in table
    rows[0]["report"] = (0.528, 0.530, -0.270)  # without the report's overall: the plain mean of its three
    assert "| M0 | BL | 0.480 | 0.528 | 0.410 | 0.530 | -0.050 | -0.270 | 0.280 | 0.263 | 12.2 |" in ablation_markdown(rows)


def test_committed_cpu_table_is_regenerated_from_its_json(tmp_path):
    """results/table2-cpu-seed0.md is what `minbert findings results/table2-cpu-seed0.json` writes."""
    results = Path(__file__).resolve().parents[1] / "results"
    written = run_cli("findings", str(results / "table2-cpu-seed0.json"), "--md", str(tmp_path / "t.md"), cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert (tmp_path / "t.md").read_text() == (results / "table2-cpu-seed0.md").read_text()
    noted = json.loads((results / "table2-cpu-seed0.json").read_text())
    for row in noted["rows"]:  # every row beside the report's number (the report's M6: no MNR)
        report_sst = {"M0": 0.528, "M6": 0.435, "M7": 0.452}.get(row["name"])
        line = f"| {row['name']} | {row['description']} | {row['kit']['sst_accuracy']:.3f} |"
        assert line + (f" {report_sst:.3f} |" if report_sst else "") in written.stdout
    last = noted["rows"][-1]
    last["note"] = "measured under an older definition"
    (tmp_path / "noted.json").write_text(json.dumps(noted))
    again = run_cli("findings", str(tmp_path / "noted.json"), cwd=tmp_path)
    assert f"| {last['minutes']:.1f} | measured under an older definition |" in again.stdout
    assert f"Rows with a note were measured under another definition: {last['name']} (measured under an older" \
        in again.stdout


def test_findings_refuses_what_is_not_a_table(tmp_path):
    result = run_cli("findings", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1 and "is not a reproduce folder (holding table2.json)" in result.stderr


def fake_finished_run(folder: Path, seed: int, sst: float, experiment="best", minutes="12.50") -> Path:
    folder.mkdir(parents=True)
    settings = {"settings": {"seed": seed}, "experiment": {"name": experiment}, "budget": {"name": "cpu"}, "epochs": 1}
    (folder / "settings.json").write_text(json.dumps(settings))
    scores = {"sst_accuracy": sst, "quora_accuracy": 0.7, "sts_pearson": 0.8, "mean_score": (sst + 1.5) / 3}
    (folder / "best-dev-scores.json").write_text(json.dumps(scores))
    if minutes:
        (folder / "minutes.txt").write_text(minutes + "\n")
    return folder


def test_seeds_table_gives_each_run_and_mean_and_spread(tmp_path, capsys):
    from minbert_lib.cli import main

    runs = [fake_finished_run(tmp_path / f"best-seed{seed}", seed, sst, minutes=m)
            for seed, sst, m in ((0, 0.40, "12.50"), (1, 0.44, "11.00"), (2, 0.42, None))]
    assert main(["seeds", *map(str, runs), "--out", str(tmp_path / "best.md")]) == 0
    table = (tmp_path / "best.md").read_text()
    assert "| best-seed0 | 0 | 0.400 | 0.700 | 0.800 | 0.633 | 12.5 |" in table
    assert "| best-seed2 | 2 | 0.420 | 0.700 | 0.800 | 0.640 | - |" in table
    assert "| mean +- sd of 3 | | 0.420 +- 0.020 | 0.700 +- 0.000 |" in table
    assert table in capsys.readouterr().out
    assert main(["seeds", str(runs[0])]) == 0 and "mean +- sd" not in capsys.readouterr().out
    assert main(["seeds", str(runs[0]), "--out", str(tmp_path / "new" / "folder" / "one.md")]) == 0
    assert "| best-seed0 |" in (tmp_path / "new" / "folder" / "one.md").read_text()  # folders are made
    assert main(["seeds", str(runs[0]), "--out", str(tmp_path)]) == 1
    assert "is a folder: give the Markdown file" in capsys.readouterr().err


def test_seeds_refuses_mixed_repeated_or_unfinished_runs(tmp_path, capsys):
    from minbert_lib.cli import main

    best = fake_finished_run(tmp_path / "best", 0, 0.4)
    other = fake_finished_run(tmp_path / "m7", 1, 0.4, experiment="M7")
    assert main(["seeds", str(best), str(other)]) == 1
    assert "mix experiments" in capsys.readouterr().err
    assert main(["seeds", str(best), str(best)]) == 1
    assert "seeds [0, 0] repeat" in capsys.readouterr().err
    assert main(["seeds", str(tmp_path / "missing")]) == 1
    assert "missing is not a run folder" in capsys.readouterr().err
    (best / "best-dev-scores.json").unlink()
    assert main(["seeds", str(best)]) == 1
    assert "has not finished" in capsys.readouterr().err


def test_fixed_samples_are_seeded_sorted_and_optional():
    from minbert_lib.predictions import fixed_sample

    datasets = {task: {"dev": list(range(size))} for task, size in (("sst", 50), ("quora", 500), ("sts", 5))}
    sample = fixed_sample(datasets, "dev", 20, seed=0)
    assert sample == fixed_sample(datasets, "dev", 20, seed=0)
    assert [len(sample[t]) for t in ("sst", "quora", "sts")] == [20, 20, 5]  # never more than the split has
    assert all(indices == sorted(set(indices)) for indices in sample.values())
    assert sample != fixed_sample(datasets, "dev", 20, seed=1)
    assert fixed_sample(datasets, "dev", None, seed=0) is None


def test_data_curve_script_trains_the_quora_head_alone(tmp_path, monkeypatch):
    """results/data_curve.py hands train() a Quora-only schedule; a tiny run with it trains Quora and nothing else."""
    import importlib.util

    from minbert_lib import experiments, schedules
    path = Path(__file__).resolve().parents[1] / "results" / "data_curve.py"
    spec = importlib.util.spec_from_file_location("data_curve", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    registries = [dict(schedules.SCHEDULES), dict(experiments.EXPERIMENTS), dict(experiments.BUDGETS)]
    steps = []

    def recording_step(step_loss, optimizer, parameters, batches, *args, **kwargs):
        steps.append(sorted(batches))
        return original_step(step_loss, optimizer, parameters, batches, *args, **kwargs)

    original_step = train_module.optimisation_step
    monkeypatch.setattr(train_module, "optimisation_step", recording_step)
    run = tiny_run(tmp_path / "run", script.single_task_experiment("quora"), script.QUORA_ONLY, epochs=1)
    quick = get_budget("quick")
    assert steps == [["quora"]] * (quick.train_limit // quick.batch_size)  # one pass over 384 pairs, 16 a batch
    assert list(json.loads((run / "history.json").read_text())["epochs"][0]["train_loss"]) == ["quora"]
    assert 0.0 <= json.loads((run / "best-dev-scores.json").read_text())["quora_accuracy"] <= 1.0
    assert json.loads((run / "settings.json").read_text())["experiment"]["schedule"] == "quora-only"
    assert registries == [schedules.SCHEDULES, experiments.EXPERIMENTS, experiments.BUDGETS]  # nothing registered


@pytest.mark.parametrize("overrides, message", [
    ({"device": "tpu"}, "'tpu' is not a device the kit trains on"),
    ({"device": "cuda" if not torch.cuda.is_available() else f"cuda:{torch.cuda.device_count()}"},
     "no cuda device" if not torch.cuda.is_available() else "CUDA device"),
    ({"epochs": 0}, "--epochs 0: a run trains at least 1 epoch"),
    ({"epochs": -1}, "--epochs -1"),
    ({"seed": -1}, "--seed -1"),
])
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        tiny_run(tmp_path / "run", **overrides)
    assert not (tmp_path / "run").exists()


def test_a_run_dir_that_is_a_file_is_refused_and_left_alone(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="notes.txt is a file"):
        tiny_run(tmp_path / "notes.txt")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_set_overrides_any_setting_and_the_run_records_them(tmp_path):
    overrides = {"lr": "1e-3", "max_length": "32", "dropout": "0.1", "head_lr_scale": "20", "pooling": "mean",
                 "train_limit": "64"}
    run = tiny_run(tmp_path / "run", epochs=1, overrides=overrides)
    saved = json.loads((run / "settings.json").read_text())
    assert saved["settings"]["overrides"] == overrides
    assert (saved["budget"]["lr"], saved["budget"]["max_length"], saved["budget"]["dropout"]) == (1e-3, 32, 0.1)
    assert saved["budget"]["train_limit"] == 64 and saved["experiment"]["head_lr_scale"] == 20.0
    assert saved["experiment"]["heads"]["pooling"] == "mean"
    assert get_budget("quick").lr == 5e-5 and get_experiment("M8").heads.pooling == "cls"  # the named ones untouched
    with pytest.raises(ConfigError, match="holds a run whose budget differ"):  # resumed only with the same settings
        tiny_run(tmp_path / "run", epochs=1, overrides={**overrides, "lr": "2e-3"})
    assert json.loads((run / "settings.json").read_text()) == saved


def test_the_cpu_budget_pools_by_mean_and_speeds_up_the_heads_but_keeps_each_rows_extensions():
    from minbert_lib.build import resolve

    for row in ("M4", "M7", "M12"):
        experiment, budget = resolve(TrainSettings(experiment=row, budget="cpu"))
        named = get_experiment(row)
        assert (experiment.heads.pooling, experiment.head_lr_scale) == ("mean", 20.0)
        assert (experiment.schedule, experiment.mnr, experiment.freeze_last, experiment.reweight) == \
               (named.schedule, named.mnr, named.freeze_last, named.reweight)
        assert (experiment.heads.paraphrase_head, experiment.heads.similarity_head) == \
               (named.heads.paraphrase_head, named.heads.similarity_head)
    assert get_experiment("M4").heads.pooling == "cls"  # the named row is left as the report defines it
    quick, _ = resolve(TrainSettings(experiment="M4", budget="quick"))
    assert (quick.heads.pooling, quick.head_lr_scale) == ("cls", 1.0)  # a budget without a recipe keeps the row's
    report_pooling, _ = resolve(TrainSettings(experiment="M4", budget="cpu",
                                              overrides={"pooling": "cls", "head_lr_scale": "1"}))
    assert (report_pooling.heads.pooling, report_pooling.head_lr_scale) == ("cls", 1.0)  # --set wins


def test_a_train_share_keeps_the_tasks_proportions_and_cuts_dev_by_the_limit():
    from minbert_lib.build import load_examples
    from minbert_lib.data import load_split

    share = dataclasses.replace(get_budget("quick"), train_share=0.1, train_limit=None, dev_limit=20)
    totals = {}
    examples = load_examples(DATA_DIR, share, seed=0, totals=totals)
    for task in ("sst", "quora", "sts"):
        assert len(examples[task]["train"]) == round(0.1 * len(load_split(task, "train", DATA_DIR)))
        assert len(examples[task]["dev"]) == 20 and totals[(task, "train")] > len(examples[task]["train"])
    with pytest.raises(ConfigError, match="a share of the training set is at most 1"):
        definition(TrainSettings(experiment="M9", budget="quick", overrides={"train_share": "1.5"}))


def test_the_default_run_folder_names_each_override():
    from minbert_lib.runs import default_run_dir

    settings = TrainSettings(experiment="M3", budget="quick", overrides={"lr": "1e-4", "batch_size": "16"})
    assert default_run_dir(settings) == Path("runs/M3-quick-seed0-batch_size=16-lr=1e-4")
    assert default_run_dir(TrainSettings(experiment="M3", budget="quick")) == Path("runs/M3-quick-seed0")


@pytest.mark.parametrize("assignments, message", [
    (["lr"], "write it as key=value"),
    (["learning_rate=1e-4"], "'learning_rate' is not a training setting; the settings are batch_size, "),
    (["lr=1e-4", "lr=2e-4"], "--set lr is given twice"),
    (["lr=fast"], "lr takes a float"),
    (["batch_size=0"], "batch_size must be above 0"),
    (["dropout=1.5"], "a dropout probability is below 1"),
    (["lr_schedule=cosine"], "choose one of constant, linear"),
    (["mnr=maybe"], "mnr takes a bool"),
    (["lr=none"], "lr needs a value"),
    (["pooling=max"], "pooling='max': choose one of"),
])
def test_bad_overrides_are_refused_before_anything_is_written(tmp_path, assignments, message):
    from minbert_lib.overrides import parse

    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        tiny_run(tmp_path / "run", overrides=parse(assignments))
    assert not (tmp_path / "run").exists()


def test_set_on_the_command_line_reaches_the_run(tmp_path):
    result = run_cli("train", "--experiment", "M8", "--budget", "quick", "--model", "tiny", "--no-bf16", "--epochs", "1",
                     "--set", "train_limit=32", "--set", "dev-limit=32", "--data-dir", str(DATA_DIR), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    run = tmp_path / "runs" / "M8-quick-seed0-dev_limit=32-train_limit=32"
    saved = json.loads((run / "settings.json").read_text())
    assert saved["settings"]["overrides"] == {"train_limit": "32", "dev_limit": "32"}
    assert (saved["budget"]["train_limit"], saved["budget"]["dev_limit"]) == (32, 32)
    wrong = run_cli("train", "--set", "lrr=1", cwd=tmp_path)
    assert wrong.returncode != 0 and wrong.stderr.strip().splitlines()[-1].startswith("minbert: error: --set 'lrr=1'")


def test_rw_weighs_tasks_by_their_official_train_sets_whatever_was_loaded(monkeypatch):
    """The report's RW weights (Quora 0.91 of 156,090 examples), though the mirror's Quora file is partial and
    the quick budget loads 384 examples of each task; a task of one's own counts what was loaded."""
    from minbert_lib.build import rw_weights
    from minbert_lib.tasks import TASKS, Task

    weights = rw_weights({"sst": 384, "quora": 384, "sts": 384})
    assert weights == pytest.approx({"sst": 8_544 / 156_090, "quora": 141_506 / 156_090, "sts": 6_040 / 156_090})
    own = Task("own", "a task of one's own", ("sentence",), "label", num_classes=2, loss=None, metric_names=("accuracy",),
               head="own", output_size=2, files={"train": "own-train.csv"})
    monkeypatch.setitem(TASKS, "own", own)
    assert rw_weights({"sst": 10, "own": 8_544})["own"] == pytest.approx(0.5)
