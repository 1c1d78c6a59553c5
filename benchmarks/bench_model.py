"""Training-step and inference throughput: the kit's BertModel against transformers.BertModel.

Both models hold the same MiniLM-L6 weights and see the same batches, in the same process
with the same thread count, and train with the same optimizer (torch's fused AdamW, the
kit trainer's fast path), so the ratio measures the models alone. Every repetition runs each variant once, in turn (interleaved),
so that a slow moment of the machine hits all variants alike; we report the median and the
spread (min-max) of tokens per second and the ratio to transformers' fp32 eager model.

    python benchmarks/bench_model.py [--shapes 32x64,64x128] [--reps 5] [--out FILE]
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import torch

from benchmarks.common import machine_header, matmul_gflops, write_report
from minbert_lib.model import BertModel
from minbert_lib.transformers_check import transformers_model_from


@dataclass
class Variant:
    name: str
    model: torch.nn.Module
    bf16: bool


def make_variants(bf16_modes: list[bool]) -> list[Variant]:
    """kit plain / kit sdpa / transformers eager / transformers sdpa, in each dtype mode."""
    kit_plain = BertModel.from_pretrained("minilm-l6", attention="plain")
    kit_sdpa = BertModel.from_pretrained("minilm-l6", attention="sdpa")
    hf_eager = transformers_model_from(kit_plain)
    hf_sdpa = transformers_model_from(kit_plain)
    if hf_eager is None:
        raise SystemExit("the benchmark needs transformers: pip install -r requirements-dev.txt")
    hf_eager.config._attn_implementation = "eager"
    hf_sdpa.config._attn_implementation = "sdpa"
    models = [("kit plain", kit_plain), ("kit sdpa", kit_sdpa),
              ("transformers eager", hf_eager), ("transformers sdpa", hf_sdpa)]
    return [Variant(f"{name} {'bf16' if bf16 else 'fp32'}", model, bf16)
            for bf16 in bf16_modes for name, model in models]


def make_batch(batch_size: int, length: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random word ids with a realistic spread of lengths (a quarter of the batch padded)."""
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1000, 30000, (batch_size, length), generator=g)
    attention_mask = torch.ones(batch_size, length, dtype=torch.long)
    for row in range(batch_size // 4):
        attention_mask[row, length // 2:] = 0
    input_ids[attention_mask == 0] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask,
            "token_type_ids": torch.zeros_like(input_ids)}


def train_step(variant: Variant, batch: dict, optimizer) -> None:
    """Forward, a loss on every hidden state, backward, AdamW update."""
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant.bf16):
        hidden = variant.model(**batch).last_hidden_state  # (B, T, H)
        loss = hidden.float().pow(2).mean()
    loss.backward()
    optimizer.step()


@torch.no_grad()
def infer_step(variant: Variant, batch: dict) -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant.bf16):
        variant.model(**batch)


def timed(fn, iterations: int) -> float:
    start = time.perf_counter()
    for _ in range(iterations):
        fn()
    return (time.perf_counter() - start) / iterations


def bench_shape(variants: list[Variant], batch_size: int, length: int, reps: int, mode: str) -> dict[str, list[float]]:
    """Tokens per second of every variant, `reps` interleaved measurements each."""
    batch = make_batch(batch_size, length)
    tokens = batch_size * length
    optimizers = {v.name: torch.optim.AdamW(v.model.parameters(), lr=1e-6, fused=True) for v in variants}
    for v in variants:
        v.model.train(mode == "train")
    step = {v.name: (lambda v=v: train_step(v, batch, optimizers[v.name])) if mode == "train"
            else (lambda v=v: infer_step(v, batch)) for v in variants}
    for v in variants:  # warm-up: allocator, autocast caches, oneDNN kernels
        timed(step[v.name], 2)
    iterations = max(1, round(8192 / tokens)) * (1 if mode == "train" else 3)
    rates = {v.name: [] for v in variants}
    for _ in range(reps):
        for v in variants:
            rates[v.name].append(tokens / timed(step[v.name], iterations))
    return rates


def flops_per_token(config, length: int, mode: str) -> float:
    """Matmul FLOPs per token of the encoder: 2 per weight (embeddings excluded) plus attention's
    Q K^T and weights @ V; a training step costs three forward passes (forward, and backward's two)."""
    H, I, L = config.hidden_size, config.intermediate_size, config.num_layers
    forward = L * (2 * (4 * H * H + 2 * H * I) + 4 * length * H)
    return forward * (3 if mode == "train" else 1)


def table(rates: dict[str, list[float]], baseline: str, flops: float, limits: dict[bool, float]) -> list[str]:
    """Median, spread, ratio to the baseline, and the share of the matmul limit of each variant's dtype."""
    base = statistics.median(rates[baseline])
    lines = ["| variant | tokens/s (median) | min-max | x transformers eager fp32 | % of matmul limit |",
             "|---|---:|---:|---:|---:|"]
    for name, values in rates.items():
        median = statistics.median(values)
        limit = limits[name.endswith("bf16")]
        lines.append(f"| {name} | {median:,.0f} | {min(values):,.0f}-{max(values):,.0f} | {median / base:.2f} "
                     f"| {100 * median * flops / (limit * 1e9):.0f}% |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="32x64,64x128", help="batch x length, comma-separated")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--modes", default="train,infer")
    parser.add_argument("--out", default="benchmarks/results/model.md")
    args = parser.parse_args()

    torch.manual_seed(0)
    variants = make_variants([False, True])
    lines = machine_header("kit BertModel vs transformers.BertModel (MiniLM-L6 weights)")
    fp32, bf16 = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16)
    lines += [f"Matmul limit (best 2048 x 2048 matmul, this process): fp32 {fp32:,.0f} GFLOP/s, "
              f"bf16 {bf16:,.0f} GFLOP/s.", ""]
    for mode in args.modes.split(","):
        for shape in args.shapes.split(","):
            batch_size, length = (int(x) for x in shape.split("x"))
            print(f"{mode} {batch_size}x{length} ...", flush=True)
            rates = bench_shape(variants, batch_size, length, args.reps, mode)
            lines += [f"### {'training step' if mode == 'train' else 'inference'}, batch {batch_size} x {length} "
                      f"({args.reps} interleaved repetitions)", ""]
            flops = flops_per_token(variants[0].model.config, length, mode)
            lines += table(rates, "transformers eager fp32", flops, {False: fp32, True: bf16}) + [""]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
