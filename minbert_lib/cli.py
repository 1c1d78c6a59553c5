"""The `minbert` command. Each subcommand is a small function; errors of the kit print one line."""
from __future__ import annotations

import argparse
import sys

from minbert_lib.errors import DataError, MinbertError

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
    from minbert_lib.reference import compare_with_transformers
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
    results = fetch_data(folder, mirror=args.mirror, progress=not args.quiet)
    for result in results:
        print(result)
    failed = [r.name for r in results if r.status == "failed"]
    if failed:
        raise DataError(f"{len(failed)} file(s) failed verification ({', '.join(failed)}); "
                        f"the messages above say why, then run `minbert data fetch` again")
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
                        f"run `minbert data fetch --data-dir {folder}`")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minbert", description="The minBERT course kit.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="embed a few sentences with the pretrained model (the kit's main job)")
    demo.add_argument("--model", default="minilm-l6", help="preset or model folder (default: minilm-l6)")
    demo.add_argument("sentences", nargs="*", default=DEMO_SENTENCES, help="sentences to compare")
    demo.set_defaults(func=cmd_demo)

    data = sub.add_parser("data", help="fetch and check the course data (SST, Quora, STS, CFIMDB)")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    data_dir_help = "the data folder (default: $MINBERT_DATA_DIR, else the kit's data/ folder)"
    fetch = data_sub.add_parser("fetch", help="download the data files, verifying sizes and checksums")
    fetch.add_argument("--data-dir", help=data_dir_help)
    fetch.add_argument("--mirror", help="copy from this local folder instead of downloading "
                                        "(default: $MINBERT_DATA_MIRROR when set)")
    fetch.add_argument("--quiet", action="store_true", help="no progress bars")
    fetch.set_defaults(func=cmd_data_fetch)
    check = data_sub.add_parser("check", help="rows, labels, malformed rows and partial files of each data file")
    check.add_argument("--data-dir", help=data_dir_help)
    check.set_defaults(func=cmd_data_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except MinbertError as err:
        print(f"minbert: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
