"""The `minbert` command. Each subcommand is a small function; errors of the kit print one line."""
from __future__ import annotations

import argparse
import sys

from minbert_lib.errors import MinbertError

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minbert", description="The minBERT course kit.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="embed a few sentences with the pretrained model (the kit's main job)")
    demo.add_argument("--model", default="minilm-l6", help="preset or model folder (default: minilm-l6)")
    demo.add_argument("sentences", nargs="*", default=DEMO_SENTENCES, help="sentences to compare")
    demo.set_defaults(func=cmd_demo)
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
