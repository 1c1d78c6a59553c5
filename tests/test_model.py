"""BertModel: shapes, masks, the two attention paths, and parity with transformers on MiniLM."""

import pytest
import torch

from minbert_lib.attention import merge_heads, split_heads
from minbert_lib.config import BertConfig, model_config
from minbert_lib.model import BertModel
from minbert_lib.transformers_check import compare_with_transformers


def test_tiny_forward_backward_gives_every_shape_and_gradient(tiny_config, tiny_batch):
    """Speed is measured in benchmarks/ (make bench), not here: a timed test fails on a busy machine."""
    torch.manual_seed(0)
    model = BertModel(tiny_config)
    out = model(**tiny_batch)
    (out.last_hidden_state.sum() + out.pooler_output.sum()).backward()
    assert out.last_hidden_state.shape == (3, 7, tiny_config.hidden_size)
    assert out.pooler_output.shape == (3, tiny_config.hidden_size)
    assert all(p.grad is not None for p in model.parameters())


def test_sizes_come_from_the_config():
    config = BertConfig(vocab_size=100, hidden_size=48, num_layers=3, num_heads=6, intermediate_size=96)
    model = BertModel(config)
    assert len(model.layers) == 3
    assert model.layers[0].attention.query.weight.shape == (48, 48)
    assert model.layers[0].feed_forward.up.weight.shape == (96, 48)


def test_heads_must_divide_hidden_size():
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        BertConfig(hidden_size=30, num_heads=4)


def test_split_and_merge_heads_are_inverse():
    x = torch.randn(2, 5, 12)
    heads = split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4)
    assert torch.equal(heads[:, 1], x[:, :, 4:8])  # head 1 owns dimensions 4..7
    assert torch.equal(merge_heads(heads), x)


def test_padding_does_not_change_real_positions(tiny_config, tiny_batch):
    torch.manual_seed(0)
    model = BertModel(tiny_config).eval()
    short = {k: v[1:2, :4] for k, v in tiny_batch.items()}  # row 1 has 4 real tokens
    with torch.no_grad():
        padded = model(**tiny_batch).last_hidden_state[1, :4]
        unpadded = model(**short).last_hidden_state[0]
    assert (padded - unpadded).abs().max().item() < 1e-5


def test_plain_and_sdpa_attention_agree(tiny_batch):
    torch.manual_seed(0)
    plain = BertModel(model_config("tiny")).eval()
    fast = BertModel(model_config("tiny", attention="sdpa")).eval()
    fast.load_state_dict(plain.state_dict())
    real = tiny_batch["attention_mask"].bool()
    with torch.no_grad():
        a, b = plain(**tiny_batch), fast(**tiny_batch)
    assert (a.last_hidden_state - b.last_hidden_state)[real].abs().max().item() < 1e-5
    assert (a.pooler_output - b.pooler_output).abs().max().item() < 1e-5


def test_random_tiny_model_matches_transformers(tiny_config, tiny_batch):
    torch.manual_seed(0)
    report = compare_with_transformers(BertModel(tiny_config), tiny_batch)
    assert report["max_abs_diff"] <= 1e-5


@pytest.mark.pretrained
@pytest.mark.parametrize("attention", ["plain", "sdpa"])
def test_minilm_matches_transformers_loaded_from_the_same_folder(minilm_dir, minilm_batch, attention):
    from transformers import BertModel as HFBertModel

    assert minilm_batch["attention_mask"].sum(1).unique().numel() >= 4  # different lengths
    ours = BertModel.from_pretrained(minilm_dir, attention=attention).eval()
    theirs = HFBertModel.from_pretrained(str(minilm_dir)).eval()
    with torch.no_grad():
        a, b = ours(**minilm_batch), theirs(**minilm_batch)
    real = minilm_batch["attention_mask"].bool()
    hidden_diff = (a.last_hidden_state - b.last_hidden_state)[real].abs().max().item()
    pooler_diff = (a.pooler_output - b.pooler_output).abs().max().item()
    print(f"{attention}: max abs diff hidden {hidden_diff:.2e}, pooler {pooler_diff:.2e}")
    assert hidden_diff <= 1e-5
    assert pooler_diff <= 1e-5


@pytest.mark.pretrained
@pytest.mark.parametrize("attention", ["plain", "sdpa"])
def test_bf16_autocast_stays_within_bf16_rounding_of_fp32(minilm_dir, minilm_batch, attention):
    """The trainer's bf16 path computes the same encoder: sentence embeddings agree to bf16 precision."""
    from minbert_lib.model import mean_pool

    model = BertModel.from_pretrained(minilm_dir, attention=attention).eval()
    with torch.no_grad():
        exact = model(**minilm_batch).last_hidden_state
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = model(**minilm_batch).last_hidden_state.float()
    real = minilm_batch["attention_mask"].bool()
    relative = ((fast - exact)[real].norm(dim=-1) / exact[real].norm(dim=-1)).max().item()
    agreement = torch.cosine_similarity(mean_pool(fast, minilm_batch["attention_mask"]),
                                        mean_pool(exact, minilm_batch["attention_mask"])).min().item()
    print(f"{attention}: largest relative error of a token's hidden state {relative:.3f}, "
          f"smallest cosine of sentence embeddings {agreement:.5f}")
    assert relative <= 0.05   # bf16 keeps 8 bits of mantissa: ~0.4% per rounding, six layers deep
    assert agreement >= 0.999
