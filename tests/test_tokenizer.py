import pytest

from minbert_lib.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.from_pretrained("minilm-l6")


def test_hello_world_ids(tok):
    assert tok("hello world")["input_ids"].tolist() == [[101, 7592, 2088, 102]]


def test_uncased_wordpiece(tok):
    assert tok.tokenize("Hello Tokenization") == ["hello", "token", "##ization"]


def test_pair_has_segment_ids(tok):
    batch = tok(["how old are you"], ["i am six"])
    ids = batch["input_ids"][0].tolist()
    types = batch["token_type_ids"][0].tolist()
    assert ids[0] == 101 and ids.count(102) == 2
    first_sep = ids.index(102)
    assert types == [0] * (first_sep + 1) + [1] * (len(ids) - first_sep - 1)


def test_dynamic_padding_to_longest_in_batch(tok):
    batch = tok(["a", "one two three four"])
    assert batch["input_ids"].shape == (2, 6)  # [CLS] + 4 words + [SEP]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0, 0], [1] * 6]
    assert batch["input_ids"][0, 3:].tolist() == [tok.pad_token_id] * 3


def test_truncation_keeps_sep(tok):
    batch = tok(["one two three four five six seven"], max_length=5)
    assert batch["input_ids"].tolist() == [[101, 2028, 2048, 2093, 102]]
    assert tok("one two three four five six seven")["input_ids"].shape[1] == 9  # limit restored


def test_pair_count_mismatch_is_an_error(tok):
    with pytest.raises(ValueError, match="2 first sentences but 1 second"):
        tok(["a", "b"], ["c"])


def test_missing_vocab_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        Tokenizer(tmp_path / "vocab.txt")
