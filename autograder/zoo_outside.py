"""The fault zoo's second tier: solution cells of every notebook, graded outside the kernel.

The first tier (zoo.py) sends whole 03_adamw submissions through `course.py autograde`. This
one sends changed solution cells of all six notebooks straight to the outside grader
(`minbert_lib.grading.grader`), with the runner in the sandbox as in a real grading, and checks
each test cell's points: hostile cells (the answer key used, checks disarmed, torch patched,
modules shadowed, the process killed), broken notebooks (copied, Markdown, edited or
duplicated cells) and correct variants that must get full marks. A case grades only the test
cells it names, so the training of notebooks 04-06 is not run for it.
"""
from __future__ import annotations

import concurrent.futures
import copy
import dataclasses
import multiprocessing
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat

from autograder import course, sandbox
from minbert_lib.grading import grader


@dataclass
class OutsideCase:
    name: str
    assignment: str
    what: str
    change: Callable  # change(nb): edits the reference solution in place
    expect: dict[str, bool]  # test grade_id -> passes?
    says: str = ""  # a failed test's message must contain this
    notes: list[str] = field(default_factory=list)  # the grading notes must contain these


def replace(grade_id: str, code: str) -> Callable:
    def change(nb) -> None:
        for cell in cells_of(nb, grade_id):
            cell.source = code
    return change


def add_to(grade_id: str, code: str, before: bool = False) -> Callable:
    def change(nb) -> None:
        for cell in cells_of(nb, grade_id):
            cell.source = code + "\n" + cell.source if before else cell.source + "\n" + code
    return change


def edit(grade_id: str, old: str, new: str) -> Callable:
    def change(nb) -> None:
        for cell in cells_of(nb, grade_id):
            assert old in cell.source, f"{grade_id}: {old!r} is gone from the reference; update the zoo"
            cell.source = cell.source.replace(old, new)
    return change


def both(*changes: Callable) -> Callable:
    def change(nb) -> None:
        for one in changes:
            one(nb)
    return change


def cells_of(nb, grade_id: str) -> list:
    return [c for c in nb.cells if grader.nbgrader_meta(c).get("grade_id") == grade_id]


def copy_cell(grade_id: str) -> Callable:
    def change(nb) -> None:
        original = cells_of(nb, grade_id)[0]
        nb.cells.insert(nb.cells.index(original) + 1, copy.deepcopy(original))
    return change


def to_markdown(grade_id: str) -> Callable:
    def change(nb) -> None:
        cells_of(nb, grade_id)[0].cell_type = "markdown"
    return change


def edit_metadata(grade_id: str, **meta) -> Callable:
    def change(nb) -> None:
        cells_of(nb, grade_id)[0].metadata.nbgrader.update(meta)
    return change


ATT = "01_attention"
WRONG_ATTENTION = ("def scaled_dot_product_attention(query, key, value, additive_mask=None):\n"
                   "    return torch.softmax(query @ key.transpose(-2, -1), dim=-1) @ value\n")
OWN_WEIGHTS = ("import math, torch\ndef attention_weights(query, key, additive_mask=None):\n"
               "    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))\n"
               "    return torch.softmax(scores if additive_mask is None else scores + additive_mask, dim=-1)\n")
ADAMW_TESTS = ["test_first_step", "test_decoupled_decay", "test_trajectory"]
ALL_01 = ["test_padding_mask", "test_attention_weights", "test_attention", "test_heads", "test_self_attention"]


def all_pass(tests: list[str]) -> dict[str, bool]:
    return {t: True for t in tests}


CASES = [
    # --- the answer key ------------------------------------------------------------------------
    OutsideCase("sdpa_imported", ATT, "scaled_dot_product_attention imported from the library",
                add_to("attention", "from minbert_lib.attention import scaled_dot_product_attention"),
                {**all_pass(ALL_01), "test_attention": False}, "reference implementation"),
    OutsideCase("sdpa_wrapped", ATT, "a function that calls the library's attention",
                add_to("attention", "import minbert_lib.attention as ref\n"
                       "def scaled_dot_product_attention(q, k, v, additive_mask=None):\n"
                       "    return ref.scaled_dot_product_attention(q, k, v, additive_mask) * 1.0\n"),
                {**all_pass(ALL_01), "test_attention": False}, "reference implementation"),
    OutsideCase("sdpa_copied_from_file", ATT, "the library's module loaded afresh from its file",
                replace("attention", OWN_WEIGHTS + "import importlib.util, minbert_lib.attention as a\n"
                       "spec = importlib.util.spec_from_file_location('fresh', a.__file__)\n"
                       "fresh = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(fresh)\n"
                       "scaled_dot_product_attention = fresh.scaled_dot_product_attention\n"),
                {**all_pass(ALL_01), "test_attention": False, "test_self_attention": False},
                "define it in its exercise cell", ["cannot be read while grading"]),
    OutsideCase("self_attention_subclassed", ATT, "MultiHeadSelfAttention subclasses the library's",
                replace("self_attention", "from minbert_lib.attention import MultiHeadSelfAttention as Ref\n"
                        "class MultiHeadSelfAttention(Ref):\n    pass\n"),
                {**all_pass(ALL_01), "test_self_attention": False}, "reference implementation"),
    OutsideCase("heads_aliased", ATT, "split_heads and merge_heads aliased from the library",
                replace("heads", "import minbert_lib.attention as lib\n"
                        "split_heads, merge_heads = lib.split_heads, lib.merge_heads\n"),
                {**all_pass(ALL_01), "test_heads": False}, "reference implementation"),
    OutsideCase("bert_layer_aliased", "02_bert", "BertLayer taken from minbert_lib.model",
                replace("bert_layer", "from minbert_lib.model import BertLayer\n"),
                {"test_bert_layer": False, "test_embeddings": True, "test_feed_forward": True},
                "reference implementation"),
    OutsideCase("adamw_from_package", "03_adamw", "from minbert_lib import AdamW",
                replace("adamw", "from minbert_lib import AdamW\n"),
                {"test_first_step": False, "test_decoupled_decay": False, "test_trajectory": False},
                "reference implementation"),
    OutsideCase("adamw_from_checks", "03_adamw", "AdamW = checks.AdamW (checks exports no reference now)",
                replace("adamw", "AdamW = checks.AdamW\n"),
                {"test_first_step": False, "test_decoupled_decay": False, "test_trajectory": False}),
    OutsideCase("adamw_unwrapped", "03_adamw", "the answer key's methods unwrapped from their guard (__wrapped__)",
                replace("adamw", "from minbert_lib.optim import AdamW as Reference\n\n\nclass AdamW(Reference):\n"
                        "    __init__ = Reference.__init__.__wrapped__\n    step = Reference.step.__wrapped__\n"),
                {"test_first_step": False, "test_decoupled_decay": False, "test_trajectory": False}),
    OutsideCase("mean_pool_aliased", "04_sentiment", "mean_pool from minbert_lib.model",
                replace("mean_pool", "from minbert_lib.model import mean_pool\n"),
                {"test_mean_pool": False}, "reference implementation"),
    OutsideCase("mean_pool_einsum", "04_sentiment", "mean pooling with einsum and clamp",
                replace("mean_pool", "def mean_pool(hidden, attention_mask):\n"
                        "    mask = attention_mask.to(hidden.dtype)\n"
                        "    total = torch.einsum('bth,bt->bh', hidden, mask)\n"
                        "    return total / mask.sum(dim=1, keepdim=True).clamp(min=1e-9)\n"),
                {"test_mean_pool": True}),
    OutsideCase("pearson_aliased", "05_multitask", "pearson and confusion_matrix from minbert_lib.evaluate",
                replace("metrics", "from minbert_lib.evaluate import pearson, confusion_matrix\n"),
                {"test_metrics": False, "test_heads": True}, "reference implementation"),
    OutsideCase("task_loss_from_table", "05_multitask", "task_loss through the losses of the library's task table",
                replace("task_loss", "from minbert_lib.tasks import TASKS\n\n\n"
                                     "def task_loss(task, outputs, labels):\n"
                                     "    return TASKS[task].loss(outputs, labels)\n"),
                {"test_task_loss": False, "test_heads": True}, "reference implementation"),
    OutsideCase("mnr_aliased", "06_extensions", "the MNR loss from minbert_lib.losses",
                replace("mnr", "from minbert_lib.losses import multiple_negatives_ranking_loss as mnr_loss\n"),
                {"test_mnr": False, "test_cosine_heads": True}, "reference implementation"),
    OutsideCase("freezing_aliased", "06_extensions", "freeze_all_but_last from minbert_lib.multitask",
                replace("freezing", "from minbert_lib.multitask import freeze_all_but_last\n"),
                {"test_freezing": False, "test_reweighting": True}, "reference implementation"),
    # --- cells that try to change their own grade ---------------------------------------------
    OutsideCase("checks_rebound", ATT, "a wrong attention, with every check rebound to a no-op",
                replace("attention", "import torch\nfrom minbert_lib import checks\n" + WRONG_ATTENTION +
                        "attention_weights = lambda q, k, m=None: None\n"
                        "for name in dir(checks):\n"
                        "    if name.startswith('check_'):\n"
                        "        setattr(checks, name, lambda *a, **k: None)\n"),
                {"test_attention": False, "test_attention_weights": False, "test_padding_mask": True}),
    OutsideCase("torch_patched", ATT, "a wrong attention, with torch.allclose and torch.equal always True",
                replace("attention", "import torch\n" + WRONG_ATTENTION +
                        "attention_weights = lambda q, k, m=None: q\n"
                        "torch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True\n"),
                {"test_attention": False, "test_attention_weights": False, "test_heads": True}),
    OutsideCase("modules_shadowed", ATT, "a wrong attention, with minbert_lib.checks replaced in sys.modules",
                replace("attention", "import sys, types, torch\n" + WRONG_ATTENTION +
                        "attention_weights = lambda q, k, m=None: q\n"
                        "sys.modules['minbert_lib.checks'] = types.SimpleNamespace()\n"
                        "sys.modules['minbert_lib.grading'] = types.SimpleNamespace()\n"),
                {"test_attention": False, "test_attention_weights": False, "test_heads": True}),
    OutsideCase("reads_hidden_tests", ATT, "a cell that looks for the notebook and its hidden tests",
                add_to("padding_mask", "import os\nfound = []\nfor folder, subfolders, files in os.walk('/'):\n"
                       "    if folder in ('/proc', '/sys', '/dev'):\n        subfolders.clear()\n"
                       "    found += [f'{folder}/{f}' for f in files if f.endswith(('.ipynb', '.pct.py'))"
                       " and 'attention' in f]\nif found:  # the notebook is in reach: fail the case\n    del padding_mask_to_additive\n"),
                all_pass(ALL_01)),
    OutsideCase("kills_its_process", ATT, "os._exit when split_heads is called",
                edit("heads", '    B, T, H = x.shape\n    return x.view', '    import os\n    os._exit(1)\n'
                     '    B, T, H = x.shape\n    return x.view'),
                {"test_heads": False, "test_self_attention": False, "test_attention": True}, "exited"),
    OutsideCase("prints_everything", ATT, "prints to stdout and stderr and warns, in every call",
                add_to("attention", "import sys, warnings\n_orig = scaled_dot_product_attention\n"
                       "def scaled_dot_product_attention(*args, **kwargs):\n"
                       "    print('inputs', args, file=sys.stderr)\n    warnings.warn('debug')\n"
                       "    print('x' * 100000)\n    return _orig(*args, **kwargs)\n"),
                all_pass(ALL_01)),
    # --- broken notebooks ---------------------------------------------------------------------
    OutsideCase("solution_copied", ATT, "the attention cell copied in JupyterLab (one grade_id twice)",
                copy_cell("attention"), all_pass(ALL_01), notes=["appears 2 times"]),
    OutsideCase("solution_markdown", ATT, "the heads cell turned into Markdown",
                to_markdown("heads"), all_pass(ALL_01), notes=["turned into markdown"]),
    OutsideCase("test_metadata_edited", ATT, "a test cell's points set to 100 and a test copied",
                both(edit_metadata("test_attention", points=100), copy_cell("test_heads")), all_pass(ALL_01)),
    OutsideCase("test_cells_deleted", ATT, "every test cell deleted",
                lambda nb: setattr(nb, "cells", [c for c in nb.cells if grader.role(c) != "tests"]),
                all_pass(ALL_01)),
    # --- correct variants ---------------------------------------------------------------------
    OutsideCase("attention_einsum_manual_softmax", ATT, "einsum, masked_fill with -inf and a hand-written softmax",
                replace("attention", "import math, torch\n"
                        "def attention_weights(query, key, additive_mask=None):\n"
                        "    scores = torch.einsum('bhqd,bhkd->bhqk', query, key) / math.sqrt(query.shape[-1])\n"
                        "    if additive_mask is not None:\n"
                        "        scores = scores.masked_fill(additive_mask < -1.0, float('-inf'))\n"
                        "    top = scores.max(dim=-1, keepdim=True).values\n"
                        "    e = (scores - top).exp()\n"
                        "    return e / e.sum(dim=-1, keepdim=True)\n"
                        "def scaled_dot_product_attention(query, key, value, additive_mask=None):\n"
                        "    return torch.einsum('bhqk,bhkd->bhqd', attention_weights(query, key, additive_mask), value)\n"),
                all_pass(ALL_01)),
    OutsideCase("attention_loops", ATT, "attention with Python loops over batch and heads",
                replace("attention", "import math, torch\n"
                        "def attention_weights(query, key, additive_mask=None):\n"
                        "    B, nh, T, hs = query.shape\n    out = torch.empty(B, nh, T, key.shape[2], dtype=query.dtype)\n"
                        "    for b in range(B):\n        for h in range(nh):\n"
                        "            s = query[b, h] @ key[b, h].T / math.sqrt(hs)\n"
                        "            if additive_mask is not None:\n                s = s + additive_mask[b, 0]\n"
                        "            out[b, h] = torch.softmax(s, dim=-1)\n    return out\n"
                        "def scaled_dot_product_attention(query, key, value, additive_mask=None):\n"
                        "    return attention_weights(query, key, additive_mask) @ value\n"),
                all_pass(ALL_01)),
    OutsideCase("heads_reshape_permute", ATT, "reshape/permute instead of view/transpose",
                replace("heads", "def split_heads(x, num_heads):\n    B, T, H = x.shape\n"
                        "    return x.reshape(B, T, num_heads, H // num_heads).permute(0, 2, 1, 3)\n"
                        "def merge_heads(x):\n    B, nh, T, hs = x.shape\n"
                        "    return x.permute(0, 2, 1, 3).reshape(B, T, nh * hs)\n"),
                all_pass(ALL_01)),
    OutsideCase("mask_large_negative", ATT, "a padding mask of -10000 with masked_fill",
                replace("padding_mask", "def padding_mask_to_additive(attention_mask, dtype):\n"
                        "    mask = torch.zeros(attention_mask.shape, dtype=dtype)\n"
                        "    mask = mask.masked_fill(attention_mask == 0, -10000.0)\n"
                        "    return mask[:, None, None, :]\n"),
                all_pass(ALL_01)),
    OutsideCase("adamw_decay_after_update", "03_adamw", "weight decay applied after the Adam update (CS224N's form)",
                both(edit("adamw", "                p.mul_(1.0 - lr * weight_decay)                  # decoupled weight decay\n",
                          ""),
                     edit("adamw", "p.addcdiv_(m_hat, v_hat.sqrt().add_(eps), value=-lr)",
                          "p.addcdiv_(m_hat, v_hat.sqrt().add_(eps), value=-lr)\n"
                          "                p.add_(p, alpha=-lr * weight_decay)")),
                all_pass(ADAMW_TESTS)),
    OutsideCase("adamw_efficient_bias_correction", "03_adamw", "Kingma & Ba's efficient bias correction",
                edit("adamw", "m_hat = m / (1.0 - beta1 ** t)\n                v_hat = v / (1.0 - beta2 ** t)\n"
                     "                p.addcdiv_(m_hat, v_hat.sqrt().add_(eps), value=-lr)",
                     "step_size = lr * (1.0 - beta2 ** t) ** 0.5 / (1.0 - beta1 ** t)\n"
                     "                p.addcdiv_(m, v.sqrt().add_(eps), value=-step_size)"),
                all_pass(ADAMW_TESTS)),
    OutsideCase("adamw_out_of_place", "03_adamw", "new tensors instead of in-place updates",
                edit("adamw", "p.addcdiv_(m_hat, v_hat.sqrt().add_(eps), value=-lr)",
                     "p.data = p.data - lr * m_hat / (v_hat.sqrt() + eps)"),
                all_pass(ADAMW_TESTS)),
    OutsideCase("adamw_step_per_optimizer", "03_adamw", "one step counter for the optimizer, not one per parameter",
                edit("adamw", 'state["step"] += 1\n                t, m, v, g = state["step"]',
                     'self.t = getattr(self, "t", 0) + 1\n                t, m, v, g = self.t'),
                {"test_first_step": False, "test_trajectory": False}),
    OutsideCase("padding_mask_ignores_dtype", ATT, "the padding mask always float32, whatever dtype is asked",
                both(edit("padding_mask", ".to(dtype)", ".float()"),
                     edit("padding_mask", "torch.finfo(dtype)", "torch.finfo(torch.float32)")),
                {"test_padding_mask": False}, says="the dtype argument was ignored"),
    OutsideCase("layer_without_dropout", "02_bert", "BertLayer never calls self.dropout (eval mode is right)",
                both(edit("bert_layer", "self.dropout(self.attention(x, additive_mask))", "self.attention(x, additive_mask)"),
                     edit("bert_layer", "self.dropout(self.feed_forward(x))", "self.feed_forward(x)")),
                {"test_bert_layer": False, "test_pretrained": True}, says="self.dropout must also"),
    OutsideCase("layer_dropout_after_norm", "02_bert", "BertLayer's dropout after the LayerNorm, not before the residual",
                edit("bert_layer", "x = self.attention_norm(x + self.dropout(self.attention(x, additive_mask)))",
                     "x = self.dropout(self.attention_norm(x + self.attention(x, additive_mask)))"),
                {"test_bert_layer": False, "test_pretrained": True}, says="dropout is applied in another place"),
    OutsideCase("model_no_default_segments", "02_bert", "BertModel fails when token_type_ids is left out",
                edit("bert_model", "        if token_type_ids is None:\n            token_type_ids = torch.zeros_like(input_ids)\n", ""),
                {"test_bert_model": False, "test_pretrained": True}, says="the call without attention_mask"),
    OutsideCase("feed_forward_tanh_gelu", "02_bert", "the tanh GELU of Google's BERT code, through to the pretrained model",
                edit("feed_forward", "F.gelu(self.up(x))", 'F.gelu(self.up(x), approximate="tanh")'),
                {"test_feed_forward": True, "test_bert_layer": True, "test_bert_model": True,
                 "test_pretrained": True}),
    OutsideCase("layer_functional_norm", "02_bert", "BertLayer with F.layer_norm and the modules' parameters",
                edit("bert_layer", "x = self.attention_norm(x + self.dropout(self.attention(x, additive_mask)))",
                     "n = self.attention_norm\n        x = F.layer_norm(x + self.dropout(self.attention(x, "
                     "additive_mask)), n.normalized_shape, n.weight, n.bias, n.eps)"),
                {"test_bert_layer": True}),
]


def reference(assignment: str):
    return nbformat.read(course.notebook_file("solutions", assignment), as_version=4)


def grade_case(case: OutsideCase, limits, threads: int | None = None) -> tuple[dict[str, tuple[float, str]], list[str]]:
    """grade_id -> (points, message) of the case's tests, graded outside with a sandboxed runner."""
    nb = reference(case.assignment)
    case.change(nb)
    with tempfile.TemporaryDirectory(prefix="minbert-zoo-") as tmp:
        spec = course.runner_spec(Path(tmp), limits, course.ROOT, threads=threads)
        g = grader.Grader(case.assignment, reference(case.assignment),
                          nbformat.read(course.notebook_file("notebooks", case.assignment), as_version=4), nb,
                          spec["command"], spec["env"], spec["cwd"], spec["threads"],
                          master_dir=course.ROOT / "solutions" / case.assignment, only=set(case.expect))
        result = g.run()
    return {t.grade_id: (t.points, t.message) for t in result.tests}, result.notes


def check(case: OutsideCase, scores: dict, notes: list[str]) -> list[str]:
    """Every way the case's grading differs from its definition."""
    problems = []
    for test, passes in case.expect.items():
        points, message = scores.get(test, (None, "not graded"))
        if (points is not None and points > 0) != passes:
            problems.append(f"{case.name}: {test} {'failed' if passes else 'passed'} ({message or 'no message'})")
    failed = [m for t, (p, m) in scores.items() if not case.expect.get(t, True)]
    if case.says and not any(case.says in m for m in failed):
        problems.append(f"{case.name}: no failed test says {case.says!r}: {failed}")
    for note in case.notes:
        if not any(note in n for n in notes):
            problems.append(f"{case.name}: no grading note says {note!r}: {notes}")
    return problems


def problems_of(index: int, limits, threads: int) -> tuple[str, list[str]]:
    """The line to print and the problems of CASES[index] (by index: a case's change cannot be pickled)."""
    case = CASES[index]
    own_user = dataclasses.replace(limits, uid=sandbox.job_uid("zoo", case.name))  # cases run side by side
    found = check(case, *grade_case(case, own_user, threads))
    return f"{case.assignment}/{case.name}: {'ok' if not found else 'DIFFERS'}", found


def grade_all(limits, jobs: int = 2) -> list[str]:
    """Every case's problems, `jobs` cases at a time (each grader in its own process, as in a real grading)."""
    problems = []
    spawn = multiprocessing.get_context("spawn")  # fresh interpreters: no torch thread pool forked
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=spawn) as pool:
        futures = [pool.submit(problems_of, i, limits, course.grading_threads(jobs)) for i in range(len(CASES))]
        for future in concurrent.futures.as_completed(futures):
            line, found = future.result()
            print(line, flush=True)
            problems += found
    return problems
