"""The `minbert` command. Each subcommand is a small function; errors of the kit print one line."""
from __future__ import annotations

import argparse
import shutil
import sys
import warnings
from pathlib import Path

from minbert_lib.errors import DataError, MinbertError, TrainingInterrupted
from minbert_lib.table2 import QUORA_NOTE, TABLE2_SOURCES, load_table2, table2_report


DEMO_SENTENCES = [
    "A man is playing a guitar.",
    "Someone is playing an instrument on stage.",
    "The stock market fell sharply on Monday.",
    "Shares dropped at the start of the week.",
    "A cat sleeps in the sun.",
]


def cmd_demo(args: argparse.Namespace) -> None:
    """Load the pretrained model into the kit's BertModel, embed sentences, compare with transformers."""
    import torch

    from minbert_lib.model import BertModel, mean_pool
    from minbert_lib.transformers_check import compare_with_transformers
    from minbert_lib.tokenizer import Tokenizer

    model = BertModel.from_pretrained(args.model)
    tokenizer = Tokenizer.from_pretrained(args.model)
    batch = tokenizer(args.sentences)
    with torch.no_grad():
        out = model(**batch)
    embeddings = torch.nn.functional.normalize(mean_pool(out.last_hidden_state, batch["attention_mask"]), dim=-1)
    similarity = embeddings @ embeddings.T  # (N, N) cosine similarities

    cfg = model.config
    print(f"model: {args.model} ({cfg.num_layers} layers, hidden {cfg.hidden_size}, {cfg.num_heads} heads)")
    print("cosine similarity of mean-pooled sentence embeddings:")
    for i, sentence in enumerate(args.sentences):
        print(f"  [{i}] {sentence}")
    print("      " + " ".join(f"[{j}]".rjust(6) for j in range(len(args.sentences))))
    for i, row in enumerate(similarity.tolist()):
        print(f"  [{i}] " + " ".join(f"{value:6.3f}" for value in row))

    report = compare_with_transformers(model, batch)
    if report is None:
        print("check against transformers.BertModel: skipped (transformers is not installed)")
    else:
        verdict = "OK" if report["max_abs_diff"] <= 1e-5 else "MISMATCH"
        print(f"check against transformers.BertModel: max |difference| of last hidden states "
              f"{report['hidden_max_abs_diff']:.2e}, pooler {report['pooler_max_abs_diff']:.2e} -> {verdict}")


def cmd_data_fetch(args: argparse.Namespace) -> None:
    """Download (or copy from a mirror) every course data file, verified; report each one."""
    from minbert_lib.data import resolve_data_dir
    from minbert_lib.fetch import fetch_data

    folder = resolve_data_dir(args.data_dir)
    results = fetch_data(folder, mirror=args.mirror, progress=not args.quiet, refresh=args.refresh)
    for result in results:
        print(result)
    failed = [r.name for r in results if r.status == "failed"]
    if failed:
        raise DataError(f"{len(failed)} file(s) could not be fetched or verified ({', '.join(failed)}); the "
                        "messages above say why. Then run `minbert data fetch` again, or, without internet, "
                        "`minbert data fetch --mirror DIR` with a local folder of the files (or set "
                        "MINBERT_DATA_MIRROR=DIR)")
    print(f"data folder: {folder}")


def cmd_data_check(args: argparse.Namespace) -> None:
    """Read every data file: rows, label distribution, malformed rows, partial files, checksums."""
    from minbert_lib.data import check_data, resolve_data_dir

    folder = resolve_data_dir(args.data_dir)
    print(f"data folder: {folder}")
    checks = check_data(folder)
    for check in checks:
        print("\n".join(check.report()))
    unusable = [c.entry.name for c in checks if not c.usable and (c.entry.required or c.error)]
    if unusable:
        raise DataError(f"{folder}: {', '.join(unusable)} missing or unreadable; "
                        f"run `minbert data fetch --data-dir {folder}` (without internet: add --mirror DIR, "
                        "or set MINBERT_DATA_MIRROR=DIR)")


def cmd_weights_fetch(args: argparse.Namespace) -> None:
    """Put a model's files in place (the hub cache for bert-base-uncased and hub names) and check them."""
    from minbert_lib.weights import resolve_model_dir

    folder = resolve_model_dir(args.model, revision=args.revision)
    print(f"{args.model}: {folder}")


def cmd_export_leaderboard(args: argparse.Namespace) -> None:
    """A run's prediction files in the CS224N starter's names and format (minbert_lib.leaderboard)."""
    from minbert_lib.leaderboard import export_leaderboard

    out = Path(args.out) if args.out else Path(args.run) / "predictions"
    written, skipped = export_leaderboard(args.run, out)
    for path in written:
        print(f"wrote {path}")
    for note in skipped:
        print(note)
    print(f"{QUORA_NOTE}\nthe CS224N starter's prediction files are in {out}")


def settings_from(args: argparse.Namespace, experiment: str, run_dir=None):
    from minbert_lib.build import TrainSettings
    from minbert_lib.overrides import parse

    return TrainSettings(experiment=experiment, budget=args.budget, seed=args.seed, model=args.model,
                         run_dir=None if run_dir is None else str(run_dir), data_dir=args.data_dir, device=args.device,
                         bf16=False if args.no_bf16 else None, epochs=args.epochs, eval_every=args.eval_every,
                         keep_last=args.keep_last, overrides=parse(args.set))


def cmd_train(args: argparse.Namespace) -> None:
    """Train one named experiment; rerunning the same command resumes an interrupted run."""
    from minbert_lib.build import train
    from minbert_lib.evaluate import MultitaskScores
    from minbert_lib.experiments import REPORT_BEST_ROW, REPORT_DEV
    from minbert_lib.runs import load_best_scores

    run_dir = train(settings_from(args, args.experiment, args.run_dir))
    scores = load_best_scores(run_dir)
    print(f"best dev scores of {args.experiment} ({args.budget} budget, seed {args.seed}):")
    print(MultitaskScores(scores["sst_accuracy"], scores["sst_macro_f1"], scores["quora_accuracy"],
                          scores["sts_pearson"]).summary())
    row = args.experiment.upper() if args.experiment.upper() in REPORT_DEV else REPORT_BEST_ROW
    sst, quora, sts = REPORT_DEV[row]
    which = f"row {row}" if row == args.experiment.upper() else f"best row ({row})"
    print(f"the report's {which}, dev: SST accuracy {sst:.3f}, Quora accuracy {quora:.3f}, "
          f"STS Pearson {sts:.3f}, plain mean {(sst + quora + sts) / 3:.3f}")
    print(f"{QUORA_NOTE}\nrun folder: {run_dir}")


def cmd_reproduce(args: argparse.Namespace) -> None:
    """Train the report's ablation rows in turn (finished rows are kept) and write Table 2 and the findings."""
    from minbert_lib.build import definition, train
    from minbert_lib.experiments import EXPERIMENTS, parse_rows
    from minbert_lib.overrides import folder_suffix, parse
    from minbert_lib.runs import changed_since, load_best_scores, load_minutes, write_json

    out = Path(args.out or f"runs/reproduce-{args.budget}-seed{args.seed}{folder_suffix(parse(args.set))}")
    if out.exists() and not out.is_dir():
        raise MinbertError(f"--out {out} is a file: give a folder for the rows' runs and the table")
    rows = []
    for name in parse_rows(args.rows):
        run_dir = out / name
        changed = changed_since(run_dir, definition(settings_from(args, name, run_dir)))
        if changed:  # a row trained under an older definition: keep it aside, train it again
            aside = run_dir.with_name(f"{name}.old")
            shutil.rmtree(aside, ignore_errors=True)
            run_dir.rename(aside)
            print(f"== {name}: its {', '.join(changed)} changed since it was trained; the old run is now {aside}")
        if not (run_dir / "best-dev-scores.json").exists():
            print(f"== {name}: {EXPERIMENTS[name].description}")
            train(settings_from(args, name, run_dir))
        rows.append({"name": name, "description": EXPERIMENTS[name].description, "kit": load_best_scores(run_dir),
                     "minutes": load_minutes(run_dir)})
    options = {"--rows": args.rows, "--budget": args.budget, "--seed": args.seed, "--model": args.model,
               "--epochs": args.epochs, "--data-dir": args.data_dir}
    command = " ".join(["minbert reproduce", *(f"{k} {v}" for k, v in options.items() if v is not None),
                        *(f"--set {item}" for item in args.set)])
    write_json(out / "table2.json", {"made_by": command, "rows": rows})
    print(write_table2(rows, out / "table2.md", out / "table2.png", command))


def write_table2(rows: list[dict], markdown_path: Path | None, figure_path: Path | None, made_by: str = "") -> str:
    """Table 2 and the findings check (table2.table2_report), written where paths are given; returns the text
    to print."""
    text, figure = table2_report(rows, made_by)
    written = []
    if markdown_path:
        markdown_path.write_text(text, encoding="utf-8")
        written.append(str(markdown_path))
    if figure_path:
        figure.savefig(figure_path, dpi=110)
        written.append(str(figure_path))
    return text + (f"written: {', '.join(written)}" if written else "")


def cmd_findings(args: argparse.Namespace) -> None:
    """Table 2 and the findings check again, from what `minbert reproduce` saved (nothing is trained)."""
    rows, made_by = load_table2(args.source)
    print(write_table2(rows, args.md and Path(args.md), args.figure and Path(args.figure), made_by))


def cmd_seeds(args: argparse.Namespace) -> None:
    """Runs of one experiment and budget with different seeds: their best dev scores and mean +- sd."""
    from minbert_lib.plots import seeds_markdown
    from minbert_lib.runs import load_best_scores, load_minutes, read_settings

    rows, definitions = [], set()
    for run in map(Path, args.runs):
        if not (run / "settings.json").is_file():
            raise MinbertError(f"{run} is not a run folder (it has no settings.json): give folders written by "
                               "minbert train")
        saved = read_settings(run)
        definitions.add((saved["experiment"]["name"], saved["budget"]["name"], saved["epochs"]))
        rows.append({"run": run.name, "seed": saved["settings"]["seed"], "kit": load_best_scores(run),
                     "minutes": load_minutes(run)})
    seeds = [row["seed"] for row in rows]
    if len(set(seeds)) < len(seeds):
        raise MinbertError(f"the runs' seeds {seeds} repeat: give each seed's run once")
    if len(definitions) > 1:
        raise MinbertError(f"the runs mix experiments, budgets or epochs {sorted(definitions)}: give runs that "
                           "differ only in their seed")
    table = seeds_markdown(rows)
    if args.out:
        out = Path(args.out)
        if out.is_dir():
            raise MinbertError(f"--out {out} is a folder: give the Markdown file to write, e.g. {out / 'seeds.md'}")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(table, encoding="utf-8")
    print(table + f"\n{QUORA_NOTE}" + (f"\nwritten: {args.out}" if args.out else ""))


def cmd_plot(args: argparse.Namespace) -> None:
    from minbert_lib.plots import plot_run

    written = plot_run(args.run)
    for path in written:
        print(f"wrote {path}")
    if "confusion_matrices.png" not in {path.name for path in written}:
        print("no confusion matrices yet: they come from the final scoring, when the run has finished")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minbert", description="The minBERT course kit.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="embed a few sentences with the pretrained model (the kit's main job)")
    demo.add_argument("--model", default="minilm-l6",
                      help="model name, hub name (owner/name[@revision]) or model folder (default: minilm-l6)")
    demo.add_argument("sentences", nargs="*", default=DEMO_SENTENCES, help="sentences to compare")
    demo.set_defaults(func=cmd_demo)

    data = sub.add_parser("data", help="fetch and check the course data (SST, Quora, STS, CFIMDB)")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    data_dir_help = "the data folder (default: $MINBERT_DATA_DIR, else the kit's data/ folder)"
    fetch = data_sub.add_parser("fetch", help="download the data files, verifying sizes and checksums")
    fetch.add_argument("--data-dir", help=data_dir_help)
    fetch.add_argument("--mirror", help="copy from this local folder instead of downloading "
                                        "(default: $MINBERT_DATA_MIRROR when set)")
    fetch.add_argument("--refresh", action="store_true",
                       help="download again the partial or missing files an earlier --mirror fetch accepted")
    fetch.add_argument("--quiet", action="store_true", help="no progress bars")
    fetch.set_defaults(func=cmd_data_fetch)
    check = data_sub.add_parser("check", help="rows, labels, malformed rows and partial files of each data file")
    check.add_argument("--data-dir", help=data_dir_help)
    check.set_defaults(func=cmd_data_check)

    def add_training_options(command):
        command.add_argument("--budget", default="cpu", choices=["quick", "cpu", "paper"],
                             help="how much to train: quick (about 2 min), cpu (default), paper (the report's, for a GPU)")
        # the name of --budget until 2026-12-03, so that older commands (results/, notes) still run
        command.add_argument("--preset", dest="budget", choices=["quick", "cpu", "paper"], help=argparse.SUPPRESS)
        command.add_argument("--seed", type=int, default=0,
                             help="seeds the heads' initialisation, the shuffling and dropout (default: 0)")
        command.add_argument("--model", default="minilm-l6", help="a model name (minilm-l6, bert-base-uncased, tiny) or a weights folder (default: minilm-l6)")
        command.add_argument("--data-dir", help="folder with the CS224N data files (default: $MINBERT_DATA_DIR, then data/)")
        command.add_argument("--device", help="cuda, mps or cpu (default: the first available)")
        command.add_argument("--no-bf16", action="store_true", help="train in fp32 even where bf16 is supported")
        command.add_argument("--epochs", type=int, help="override the budget's number of epochs")
        command.add_argument("--eval-every", type=int, metavar="STEPS",
                             help="score the dev sample and write last.pt every STEPS optimizer steps, mid-epoch "
                                  "too (default: an eighth of the run's steps; 0: at each epoch's end only)")
        command.add_argument("--keep-last", action="store_true",
                             help="keep last.pt (the resume checkpoint, 271 MB for MiniLM) once the run has finished")
        command.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                             help="change one training setting, e.g. --set lr=1e-4 --set head_lr_scale=20: any "
                                  "field of the budget, the experiment or its heads (a wrong key lists them all)")

    train = sub.add_parser("train", help="train one named experiment (M0..M12 or best)",
                           description="Train one named experiment. The same command again resumes an interrupted "
                                       "run (Ctrl-C) from its last checkpointed step.")
    train.add_argument("--experiment", default="best", help="M0..M12 (the report's Table 2 rows) or best")
    train.add_argument("--run-dir", help="where to write the run (default: runs/<experiment>-<budget>-seed<seed>, "
                                         "then -key=value for each --set)")
    add_training_options(train)
    train.set_defaults(func=cmd_train)

    reproduce = sub.add_parser("reproduce", help="train the report's ablation rows and write Table 2")
    reproduce.add_argument("--rows", default="M0-M12", help="e.g. M0-M12 or M1,M3,M7 (default: M0-M12)")
    reproduce.add_argument("--out", help="folder for the runs and the table (default: runs/reproduce-<budget>-seed<seed>)")
    add_training_options(reproduce)
    reproduce.set_defaults(func=cmd_reproduce)

    findings = sub.add_parser("findings", help="Table 2 beside the report's and the findings check, from a "
                                               "reproduce folder (nothing is trained)")
    findings.add_argument("source", help=TABLE2_SOURCES)
    findings.add_argument("--md", help="also write the table and findings to this Markdown file")
    findings.add_argument("--figure", help="also draw the table (kit beside report) into this PNG file")
    findings.set_defaults(func=cmd_findings)

    seeds = sub.add_parser("seeds", help="compare runs of one experiment with different seeds (mean +- sd)")
    seeds.add_argument("runs", nargs="+", help="run folders written by minbert train")
    seeds.add_argument("--out", help="also write the table to this Markdown file")
    seeds.set_defaults(func=cmd_seeds)

    plot = sub.add_parser("plot", help="draw a run's learning curves and confusion matrices")
    plot.add_argument("run", help="a run folder written by minbert train")
    plot.set_defaults(func=cmd_plot)
    weights = sub.add_parser("weights", help="pretrained weights: fetch them ahead of time (e.g. before going offline)")
    weights_sub = weights.add_subparsers(dest="weights_command", required=True)
    weights_fetch = weights_sub.add_parser(
        "fetch", help="download a model into the Hugging Face cache (honours HF_ENDPOINT, HF_TOKEN, HF_HOME, "
                      "HF_HUB_OFFLINE) and print its folder")
    weights_fetch.add_argument("model", nargs="?", default="bert-base-uncased",
                               help="bert-base-uncased (default, at the kit's pinned revision), owner/name[@revision], "
                                    "minilm-l6 or a folder")
    weights_fetch.add_argument("--revision", help="branch, tag or commit of a hub model")
    weights_fetch.set_defaults(func=cmd_weights_fetch)

    leaderboard = sub.add_parser("export-leaderboard",
                                 help="write a run's predictions in the CS224N starter's file names and format")
    leaderboard.add_argument("run", help="a run folder written by minbert train")
    leaderboard.add_argument("--out", help="folder for the files (default: RUN/predictions)")
    leaderboard.set_defaults(func=cmd_export_leaderboard)
    return parser


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings of the kit (partial data files, malformed rows) as one line, without source code."""
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    warnings.formatwarning = one_line_warning
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except TrainingInterrupted as err:  # Ctrl-C while training: where it stopped and where it resumes
        print(err, file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MinbertError as err:
        print(f"minbert: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
