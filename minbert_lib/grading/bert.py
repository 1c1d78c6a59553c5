"""Grading of 02_bert: embeddings, feed-forward, BertLayer, BertModel, pretrained weights."""
from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from minbert_lib.attention import padding_mask_to_additive
from minbert_lib.config import BertConfig, model_config
from minbert_lib.grading import attention as _attention  # noqa: F401  (registers mask_ignored)
from minbert_lib.grading import drive
from minbert_lib.grading.remote import AnswerKeyUsed, RunnerFailed, StudentError, builtin_exception_name
from minbert_lib.grading.common import (MISTAKES, CheckError, case, compare, compare_train_mode, load, module_outputs, outputs_of,
                                        plain, random_attention_mask, randomize_, register)
from minbert_lib.model import BertEmbeddings, BertLayer, BertModel, FeedForward

ASSIGNMENT = "02_bert"
PRETRAINED_SENTENCES = [
    "The cat sat on the mat.",
    "Attention lets every token look at every other token.",
    "BERT reads the whole sentence at once.",
]

register({
    "embeddings_no_position": "the position embeddings are missing: add position_embeddings(arange(T))",
    "embeddings_no_token_type": "the token-type (segment) embeddings are missing",
    "embeddings_no_layer_norm": "the sum of the three embeddings was not passed through layer_norm",
    "feed_forward_relu": "ReLU was used: BERT's feed-forward uses GELU (F.gelu)",
    "layer_pre_norm": "LayerNorm was applied before the sub-layer (pre-norm, x + f(LN(x))): BERT is "
                      "post-norm, LN(x + f(x)), normalising after the residual is added",
    "layer_no_residual": "the residual connection is missing: add the sub-layer's input back, "
                         "LN(x + f(x)) rather than LN(f(x))",
    "layer_norm_shared": "the same LayerNorm was used after both sub-layers: use attention_norm after "
                         "attention and ffn_norm after the feed-forward",
    "model_no_mask": "the attention mask was not used: turn it into an additive mask and pass it to every layer",
    "model_default_arguments": "the call without attention_mask and token_type_ids failed or differs: when "
                               "they are None every token is real (no mask) and in segment 0 "
                               "(torch.zeros_like(input_ids))",
    "dropout_missing": "in training mode the output equals the eval-mode output: dropout is never applied; "
                       "call self.dropout where the formula above has Dropout",
    "layer_dropout_missing": "in training mode only the attention's own dropout ran: self.dropout must also "
                             "be applied to each sub-layer's output before the residual, LN(x + Dropout(f(x)))",
    "dropout_wrong_place": "the eval-mode output is right, but in training mode (same random seed as the "
                           "reference) it differs: dropout is applied in another place, or another number "
                           "of times, than in BERT",
    "pretrained_train_mode": "the model is in training mode, so dropout changes its outputs: return model.eval()",
})

# Module outputs are float32 of O(1) (after LayerNorm) from a few hundred operations over
# hidden size 32 and 2 layers: rounding stays near 1e-6, so compare's default 1e-5 + 1e-4
# relative is the budget. GELU has two correct forms: the exact x * Phi(x) (Hugging Face's BERT,
# the MiniLM weights) and the tanh approximation (Google's original BERT code). They differ by
# up to 4.7e-4 per unit, far past that budget, so no tolerance could hold both: every check
# of 02 compares with the reference computed each way (`tanh_gelu`) and accepts either.
DROPOUT_WHERE = {
    "BertEmbeddings": "once, on the normalised sum, last",
    "BertLayer": "on the attention's output and on the feed-forward's output, each before its residual is added",
    "BertModel": "inside the embeddings and the layers only",
}


# --- cases --------------------------------------------------------------------------------

def _tiny_module_case(module_cls, seed: int, batch: int, length: int) -> tuple[dict, nn.Module, torch.Generator]:
    """A randomized reference module of the tiny config, with the case fields every module case shares."""
    g = torch.Generator().manual_seed(seed)
    config = model_config("tiny", vocab_size=64, max_position_embeddings=16)  # small files
    reference = randomize_(module_cls(config), g)
    c = {"config": config.to_dict(), "state": reference.state_dict(),
         "attention_mask": random_attention_mask(g, batch, length)}
    return c, reference, g


def embeddings_case(seed: int, batch: int = 2, length: int = 6) -> dict:
    c, reference, g = _tiny_module_case(BertEmbeddings, seed, batch, length)
    c["input_ids"] = torch.randint(1, reference.word_embeddings.num_embeddings, (batch, length), generator=g)
    c["token_type_ids"] = torch.randint(0, 2, (batch, length), generator=g)
    with torch.no_grad():
        c["output"] = reference(c["input_ids"], c["token_type_ids"])  # (B, T, H)
    return c


def feed_forward_case(seed: int, batch: int = 2, length: int = 5) -> dict:
    c, reference, g = _tiny_module_case(FeedForward, seed, batch, length)
    c["x"] = torch.randn(batch, length, reference.up.in_features, generator=g)
    with torch.no_grad():
        c["output"] = reference(c["x"])  # (B, T, H)
    return c


def bert_layer_case(seed: int, batch: int = 2, length: int = 5) -> dict:
    c, reference, g = _tiny_module_case(BertLayer, seed, batch, length)
    c["x"] = torch.randn(batch, length, reference.attention_norm.normalized_shape[0], generator=g)
    with torch.no_grad():
        c["output"] = reference(c["x"], padding_mask_to_additive(c["attention_mask"], torch.float32))
    return c


def bert_model_case(seed: int, batch: int = 3, length: int = 7) -> dict:
    c, reference, g = _tiny_module_case(BertModel, seed, batch, length)
    ids = torch.randint(1, reference.config.vocab_size, (batch, length), generator=g)
    c["input_ids"] = ids * c["attention_mask"]  # padding positions hold the pad id 0
    c["token_type_ids"] = torch.randint(0, 2, (batch, length), generator=g) * c["attention_mask"]
    with torch.no_grad():
        out = reference(c["input_ids"], c["attention_mask"], c["token_type_ids"])
    c["last_hidden_state"], c["pooler_output"] = out.last_hidden_state, out.pooler_output
    return c


def pretrained_case(sentences: list[str] = PRETRAINED_SENTENCES) -> dict:
    """all-MiniLM-L6-v2's last hidden states on fixed sentences (needs the weights package)."""
    from minbert_lib.tokenizer import Tokenizer

    batch = Tokenizer.from_pretrained("minilm-l6")(sentences)
    with torch.no_grad():
        out = BertModel.from_pretrained("minilm-l6")(**batch)
    return {"sentences": list(sentences), **batch, "last_hidden_state": out.last_hidden_state}


CASES = {
    "embeddings": partial(embeddings_case, 0),
    "feed_forward": partial(feed_forward_case, 0),
    "bert_layer": partial(bert_layer_case, 0),
    "bert_model": partial(bert_model_case, 0),
    "pretrained": pretrained_case,
}


# --- drivers (run the student's code; return plain data) ----------------------------------

def pretrained_outputs(load_fn, input_ids, attention_mask, token_type_ids) -> dict:
    """Driver: model = load_fn(); its training flag and last hidden states on the given batch."""
    model = load_fn()
    training = bool(model.training)
    with torch.no_grad():
        out = model(input_ids, attention_mask, token_type_ids)
    return {"training": training, "output": plain(out)}


def map_names(fn, names: list[str]) -> list:
    """Driver: [fn(name) for name in names]."""
    return [plain(fn(name)) for name in names]


# --- checks -------------------------------------------------------------------------------

def _tanh_feed_forward(feed_forward: FeedForward, x: torch.Tensor) -> torch.Tensor:
    return feed_forward.down(F.gelu(feed_forward.up(x), approximate="tanh"))  # (B, T, H)


def tanh_gelu(module: nn.Module) -> nn.Module:
    """The reference module with GELU's tanh approximation in every feed-forward: the accepted variant."""
    for feed_forward in module.modules():
        if isinstance(feed_forward, FeedForward):
            feed_forward.forward = partial(_tanh_feed_forward, feed_forward)
    return module


def _reference(reference_cls, c: dict, train: bool = False, drop_hidden: bool = False,
               tanh: bool = False) -> nn.Module:
    module = reference_cls(BertConfig(**c["config"]))
    module.load_state_dict(c["state"])
    if drop_hidden:  # the mistake of a layer without self.dropout
        module.dropout = nn.Identity()
    return (tanh_gelu(module) if tanh else module).train(train)


def _train_output(reference_cls, c: dict, seed: int, *args, drop_hidden: bool = False,
                  tanh: bool = False) -> torch.Tensor:
    """The reference's training-mode output right after torch.manual_seed(seed), as the student's was run."""
    module = _reference(reference_cls, c, train=True, drop_hidden=drop_hidden, tanh=tanh)
    torch.manual_seed(seed)
    out = module(*args)
    return out.last_hidden_state if reference_cls is BertModel else out


def _run(cls, c: dict, calls: list, train: bool = False, seed: int = 0) -> list:
    return outputs_of(cls, drive(module_outputs, cls, [{"config": c["config"]}], {}, c["state"], calls,
                                 train=train, seed=seed), c["state"])


def _check_train_mode(what: str, name: str, actual, eval_output: torch.Tensor, reference_train: torch.Tensor,
                      mistakes: dict | None = None, variants: tuple = ()) -> None:
    """The training-mode output (seeded like the reference's run) against the reference's."""
    try:
        compare_train_mode(f"{what} in training mode", actual, reference_train,
                           {"dropout_missing": eval_output, **(mistakes or {})}, "dropout_wrong_place", variants)
    except CheckError as err:
        if MISTAKES["dropout_wrong_place"] in str(err):
            raise CheckError(f"{err} (BERT applies it {DROPOUT_WHERE[name]})") from None
        raise


@torch.no_grad()
def check_embeddings(cls, seed: int | None = None, **shape) -> None:
    """cls(config); forward(input_ids, token_type_ids) -> (B, T, H), dropout last."""
    c = case("embeddings", embeddings_case, seed, **shape)
    ref = _reference(BertEmbeddings, c)
    ids, types = c["input_ids"], c["token_type_ids"]
    (actual,) = _run(cls, c, [("forward", [ids, types], {})])
    words, segments = ref.word_embeddings(ids), ref.token_type_embeddings(types)  # (B, T, H)
    positions = ref.position_embeddings(torch.arange(ids.size(1)))[None]          # (1, T, H)
    compare("BertEmbeddings", actual, c["output"], {
        "embeddings_no_position": ref.layer_norm(words + segments),
        "embeddings_no_token_type": ref.layer_norm(words + positions),
        "embeddings_no_layer_norm": words + positions + segments,
    })
    (trained,) = _run(cls, c, [("forward", [ids, types], {})], train=True, seed=1)
    _check_train_mode("BertEmbeddings", "BertEmbeddings", trained, c["output"],
                      _train_output(BertEmbeddings, c, 1, ids, types))


@torch.no_grad()
def check_feed_forward(cls, seed: int | None = None, **shape) -> None:
    """cls(config); forward(x (B, T, H)) -> (B, T, H)."""
    c = case("feed_forward", feed_forward_case, seed, **shape)
    ref = _reference(FeedForward, c)
    (actual,) = _run(cls, c, [("forward", [c["x"]], {})])
    up = ref.up(c["x"])  # (B, T, I)
    compare("FeedForward", actual, c["output"], {"feed_forward_relu": ref.down(F.relu(up))},
            variants=(_tanh_feed_forward(ref, c["x"]),))


@torch.no_grad()
def check_bert_layer(cls, seed: int | None = None, **shape) -> None:
    """cls(config); forward(x (B, T, H), additive_mask (B, 1, 1, T) or None) -> (B, T, H)."""
    c = case("bert_layer", bert_layer_case, seed, **shape)
    ref = _reference(BertLayer, c)
    x = c["x"]
    mask = padding_mask_to_additive(c["attention_mask"], x.dtype)
    (actual,) = _run(cls, c, [("forward", [x, mask], {})])
    attend, ffn, norm1, norm2 = ref.attention, ref.feed_forward, ref.attention_norm, ref.ffn_norm
    pre = x + attend(norm1(x), mask)
    no_residual = norm1(attend(x, mask))
    shared = norm1(x + attend(x, mask))
    compare("BertLayer", actual, c["output"], {
        "layer_pre_norm": pre + ffn(norm2(pre)),
        "layer_no_residual": norm2(ffn(no_residual)),
        "layer_norm_shared": norm1(shared + ffn(shared)),
        "mask_ignored": ref(x, None),
    }, variants=(_reference(BertLayer, c, tanh=True)(x, mask),))
    (trained,) = _run(cls, c, [("forward", [x, mask], {})], train=True, seed=2)
    _check_train_mode("BertLayer", "BertLayer", trained, c["output"], _train_output(BertLayer, c, 2, x, mask),
                      {"layer_dropout_missing": _train_output(BertLayer, c, 2, x, mask, drop_hidden=True)},
                      (_train_output(BertLayer, c, 2, x, mask, tanh=True),))


@torch.no_grad()
def check_bert_model(cls, seed: int | None = None, **shape) -> None:
    """cls(config); forward(input_ids, attention_mask=None, token_type_ids=None) -> BertOutput."""
    c = case("bert_model", bert_model_case, seed, **shape)
    ref = _reference(BertModel, c)
    ids, mask, types = c["input_ids"], c["attention_mask"], c["token_type_ids"]
    (full,) = _run(cls, c, [("forward", [ids, mask, types], {})])
    if not isinstance(full, dict) or "last_hidden_state" not in full:
        raise CheckError(f"BertModel: forward must return a BertOutput, got {type(full).__name__}")
    unmasked = ref(ids, None, types)
    tanh_ref = _reference(BertModel, c, tanh=True)
    tanh_out = tanh_ref(ids, mask, types)
    compare("BertModel last_hidden_state", full["last_hidden_state"], c["last_hidden_state"],
            {"model_no_mask": unmasked.last_hidden_state}, variants=(tanh_out.last_hidden_state,))
    compare("BertModel pooler_output", full.get("pooler_output"), c["pooler_output"],
            variants=(tanh_out.pooler_output,))
    try:
        (defaults,) = _run(cls, c, [("forward", [ids], {})])
    except (CheckError, RunnerFailed, AnswerKeyUsed):
        raise
    except Exception as err:  # noqa: BLE001: the full call worked, so the defaults are the cause
        kind = err.type_name if isinstance(err, StudentError) else type(err).__name__
        raise CheckError(f"BertModel(input_ids) alone raised {builtin_exception_name(kind)}: "
                         f"{MISTAKES['model_default_arguments']}") from err
    try:  # compare's float32 budget (the note on tolerances above)
        compare("BertModel(input_ids) alone", defaults.get("last_hidden_state") if isinstance(defaults, dict) else None,
                ref(ids).last_hidden_state, variants=(tanh_ref(ids).last_hidden_state,))
    except CheckError:
        raise CheckError(f"BertModel(input_ids) alone: {MISTAKES['model_default_arguments']}") from None
    (trained,) = _run(cls, c, [("forward", [ids, mask, types], {})], train=True, seed=3)
    _check_train_mode("BertModel last_hidden_state", "BertModel",
                      trained.get("last_hidden_state") if isinstance(trained, dict) else trained,
                      c["last_hidden_state"], _train_output(BertModel, c, 3, ids, mask, types),
                      variants=(_train_output(BertModel, c, 3, ids, mask, types, tanh=True),))


@torch.no_grad()
def check_padding_invariance(cls, seed: int = 0) -> None:
    """Changing what stands at padded positions must not change the real tokens' hidden states."""
    c = bert_model_case(seed)
    ids, mask, types = c["input_ids"], c["attention_mask"], c["token_type_ids"]
    vocab = c["config"]["vocab_size"]
    other_ids = torch.where(mask.bool(), ids, (ids + 7) % vocab)  # other tokens at the pads
    out, changed = _run(cls, c, [("forward", [ids, mask, types], {}), ("forward", [other_ids, mask, types], {})])
    real = mask.bool()  # (B, T)
    try:
        a, b = out["last_hidden_state"][real], changed["last_hidden_state"][real]
    except (TypeError, KeyError, IndexError):
        raise CheckError("BertModel: forward must return a BertOutput with last_hidden_state (B, T, H)") from None
    # the same float32 computation on the real tokens: only the padded keys' exp(-huge) = 0 terms
    # change, so the states agree to rounding (~1e-6); an ignored mask moves them by ~1e-1
    if not torch.allclose(a, b, atol=1e-5):
        raise CheckError(f"changing the padding tokens changed the real tokens' hidden states: "
                         f"{MISTAKES['model_no_mask']}")


@torch.no_grad()
def check_pretrained(load_fn, sentences: list[str] | None = None) -> None:
    """load_fn() -> a model holding all-MiniLM-L6-v2; its hidden states must match the reference's."""
    c = load("pretrained") if sentences is None else pretrained_case(sentences)
    answer = drive(pretrained_outputs, load_fn, c["input_ids"], c["attention_mask"], c["token_type_ids"])
    if answer["training"]:
        raise CheckError(f"pretrained model: {MISTAKES['pretrained_train_mode']}")
    out = answer["output"]
    if not isinstance(out, dict) or "last_hidden_state" not in out:
        raise CheckError("pretrained model: forward must return a BertOutput with last_hidden_state")
    real = c["attention_mask"].bool()  # compare real tokens only: padding outputs mean nothing
    got, expected = out["last_hidden_state"], c["last_hidden_state"]
    # 6 layers of width 384 in float32: rounding differences between equivalent codes reach 1e-5
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        compare("pretrained last_hidden_state", got, expected)  # names the type or the shape
    variants = ()
    if not torch.allclose(got[real], expected[real], atol=1e-4, rtol=1e-4):  # the tanh GELU, made on demand
        tanh_model = tanh_gelu(BertModel.from_pretrained("minilm-l6").eval())
        variants = (tanh_model(c["input_ids"], c["attention_mask"], c["token_type_ids"]).last_hidden_state[real],)
    compare("pretrained last_hidden_state", got[real], expected[real], atol=1e-4, rtol=1e-4, variants=variants)


def check_weight_names(fn) -> None:
    """fn(Hugging Face parameter name) -> the kit's name, for every parameter of a BertModel."""
    from minbert_lib.weights import kit_to_hf_name

    kit_names = list(BertModel(model_config("tiny")).state_dict())
    hf_names = [kit_to_hf_name(name) for name in kit_names]
    for kit_name, hf_name, got in zip(kit_names, hf_names, drive(map_names, fn, hf_names)):
        if got != kit_name:
            raise CheckError(f"weight names: {hf_name!r} must become {kit_name!r}, got {got!r}")
