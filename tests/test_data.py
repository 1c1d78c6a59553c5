"""Readers of the CS224N files, and the batching built on them."""
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from minbert_lib.batching import BucketBatchSampler, TaskDataset, batch_to, real_token_fraction
from minbert_lib.data import (DATA_DIR_ENV, DataWarning, Example, check_data, default_data_dir, load_split,
                              read_split, resolve_data_dir)
from minbert_lib.errors import DataError
from minbert_lib.registry import FILES
from minbert_lib.tokenizer import Tokenizer

# Rows per file as the mirror's README lists them (quora-train is the partial copy).
MIRROR_ROWS = {
    "ids-sst-train.csv": 8_544, "ids-sst-dev.csv": 1_101, "ids-sst-test-student.csv": 2_210,
    "quora-train.csv": 13_507, "quora-dev.csv": 20_214,
    "sts-train.csv": 6_040, "sts-dev.csv": 863, "sts-test-student.csv": 1_725,
    "ids-cfimdb-train.csv": 1_707, "ids-cfimdb-dev.csv": 245, "ids-cfimdb-test-student.csv": 488,
}
HEADERS = {"sst": "\tid\tsentence\tsentiment", "quora": "\tid\tsentence1\tsentence2\tis_duplicate",
           "sts": "\tid\tsentence1\tsentence2\tsimilarity"}


def write_file(folder: Path, name: str, lines: list[str]) -> Path:
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def letters_tokenizer(tmp_path_factory) -> Tokenizer:
    """A WordPiece tokenizer over single letters: each word becomes one token per letter."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *"abcdefghijklmnopqrstuvwxyz",
             *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz")]
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n")
    return Tokenizer(path)


# --- reading the files ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MIRROR_ROWS))
def test_every_mirror_file_has_its_readme_row_count(mirror, name):
    entry = next(f for f in FILES if f.name == name)
    result = read_split(entry.task, entry.split, mirror)
    assert len(result.examples) + len(result.malformed) == MIRROR_ROWS[name]
    assert all(len(e.id) == 25 for e in result.examples)  # the hex ids, not the index column


def test_quora_dev_reports_its_two_malformed_rows(mirror):
    result = read_split("quora", "dev", mirror)
    assert len(result.examples) == 20_212
    assert [m.line for m in result.malformed] == [2577, 14222]
    assert [m.reason for m in result.malformed] == ["empty label", "empty sentence2"]
    with pytest.warns(DataWarning, match=r"2 malformed row\(s\) left out, at line\(s\) 2577, 14222"):
        assert len(load_split("quora", "dev", mirror)) == 20_212


def test_labels_are_typed_per_task(mirror):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # the partial Quora train file
        sst, quora, sts, cfimdb = (load_split(task, "train", mirror) for task in ("sst", "quora", "sts", "cfimdb"))
    assert {e.label for e in sst} == {0, 1, 2, 3, 4} and all(type(e.label) is int for e in sst)
    assert {e.label for e in quora} == {0, 1} and all(type(e.label) is int for e in quora)
    assert {e.label for e in cfimdb} == {0, 1}
    assert all(type(e.label) is float and 0.0 <= e.label <= 5.0 for e in sts)
    assert all(e.text_b is None for e in sst) and all(e.text_b for e in sts)
    first = sts[0]
    assert first == Example("6d0ec4e8a34ac432e1c1699a0", "13 killed in Afgan terror attack",
                            "6 killed in Afghan capital mosque attack", 2.0)


def test_test_files_have_no_labels(mirror):
    sst_test = load_split("sst", "test", mirror)  # this file has an extra leading column
    assert sst_test[0] == Example("b7573736a6ddf7be102b7fee0", "Effective but too-tepid biopic")
    assert all(e.label is None for e in load_split("sts", "test", mirror))


def test_partial_quora_train_is_flagged(mirror):
    with pytest.warns(DataWarning, match="only 13,507 of the official 141,506 rows; Quora results .* not comparable"):
        load_split("quora", "train", mirror)


def test_missing_file_names_itself_and_the_fetch_command(tmp_path):
    with pytest.raises(DataError, match=r"quora-test-student\.csv not found: run `minbert data fetch`"):
        load_split("quora", "test", tmp_path)


def test_unknown_task_or_split_names_the_choices():
    with pytest.raises(ValueError, match="choose one of sst, quora, sts, cfimdb"):
        load_split("imdb", "train")
    with pytest.raises(ValueError, match="choose one of train, dev, test"):
        load_split("sst", "validation")


def test_malformed_rows_are_reported_with_line_and_reason(tmp_path):
    write_file(tmp_path, "quora-dev.csv", [
        HEADERS["quora"],
        "0\taaa\tIs it?\tIs it so?\t1.0",
        "1\tbbb\tIs it?\tIs it so?\t0.5",      # not a class
        "2\tccc\tIs it?\t1.0",                 # a field missing
        "3\t\tIs it?\tIs it so?\t0.0",         # no id
        '4\tddd\t"Two\nlines"\tfine\t0',       # a quoted newline: one record over lines 6-7
        "5\teee\tIs it?\tIs it so?\tyes",
    ])
    result = read_split("quora", "dev", tmp_path)
    assert [e.id for e in result.examples] == ["aaa", "ddd"]
    assert result.examples[1].text == "Two\nlines"
    assert [(m.line, m.reason) for m in result.malformed] == [
        (3, "label 0.5 is not one of [0, 1]"), (4, "4 fields instead of 5"), (5, "empty id"),
        (8, "could not convert string to float: 'yes'")]


def test_a_file_is_parsed_once_until_it_changes(tmp_path, monkeypatch):
    import minbert_lib.data as data

    path = write_file(tmp_path, "sts-dev.csv", [HEADERS["sts"], "0\taaa\tA cat.\tA dog.\t2.5"])
    parses = []
    parse = data.parse_split_file
    monkeypatch.setattr(data, "parse_split_file", lambda *args: parses.append(args) or parse(*args))
    first = load_split("sts", "dev", tmp_path)
    first.append("a caller's own edit")
    assert [e.id for e in load_split("sts", "dev", tmp_path)] == ["aaa"]  # the edit did not reach the cache
    assert len(parses) == 1
    path.write_text(path.read_text() + "1\tbbb\tA cow.\tA cat.\t1.0\n", encoding="utf-8")
    assert [e.id for e in load_split("sts", "dev", tmp_path)] == ["aaa", "bbb"]  # changed on disk: read again
    assert len(parses) == 2


def test_a_file_with_the_wrong_columns_is_an_error(tmp_path):
    write_file(tmp_path, "sts-dev.csv", [HEADERS["sst"], "0\taaa\tA sentence.\t3"])
    with pytest.raises(DataError, match=r"sts-dev\.csv: line 1 lacks the column\(s\) sentence1, sentence2, similarity"):
        read_split("sts", "dev", tmp_path)


def test_data_dir_resolution_order(monkeypatch, tmp_path):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert resolve_data_dir() == default_data_dir()
    assert default_data_dir() == Path(__file__).resolve().parent.parent / "data"  # this checkout's data/
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"


def test_check_data_reports_rows_labels_malformed_and_partial(mirror):
    reports = {c.entry.name: "\n".join(c.report()) for c in check_data(mirror)}
    assert reports["ids-sst-dev.csv"].startswith("ids-sst-dev.csv: 1,101 rows, 1,101 usable; sha256 matches upstream")
    assert "labels: 0: 139, 1: 289, 2: 229, 3: 279, 4: 165" in reports["ids-sst-dev.csv"]
    assert "malformed row left out, line 2577: empty label" in reports["quora-dev.csv"]
    assert "WARNING: a partial file, only 13,507 of the official 141,506 rows" in reports["quora-train.csv"]
    assert reports["quora-test-student.csv"] == "quora-test-student.csv: MISSING (needed only for test predictions)"


# --- datasets, collation and bucketing -------------------------------------------------------------


def test_batches_pad_only_to_their_own_longest(letters_tokenizer):
    examples = [Example("a", "ab", label=1), Example("b", "abcdef", label=0), Example("c", "abc", label=1),
                Example("d", "a", label=0)]
    dataset = TaskDataset(examples, letters_tokenizer)
    assert dataset.lengths == [4, 8, 5, 3]  # letters + [CLS] + [SEP]
    batch = dataset.collate([dataset[0], dataset[2]])
    assert batch["input_ids"].shape == (2, 5)
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]
    assert batch["input_ids"][0, 4] == letters_tokenizer.pad_token_id
    assert batch["labels"].dtype == torch.long and batch["ids"] == ["a", "c"]
    assert dataset.collate([dataset[1]])["input_ids"].shape == (1, 8)


def test_cross_encoder_joins_a_pair_with_segment_ids(letters_tokenizer):
    dataset = TaskDataset([Example("p", "ab", "cde", 3.5)], letters_tokenizer, pair_encoding="cross")
    batch = dataset.collate([dataset[0]])
    assert letters_tokenizer.decode(batch["input_ids"][0]).replace(" ", "") == "abcde"
    tokens = [letters_tokenizer._wordpiece.id_to_token(i) for i in batch["input_ids"][0].tolist()]
    assert tokens == ["[CLS]", "a", "##b", "[SEP]", "c", "##d", "##e", "[SEP]"]
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 0, 1, 1, 1, 1]]
    assert batch["labels"].dtype == torch.float32 and batch["labels"].tolist() == [3.5]


def test_bi_encoder_pads_each_sentence_separately(letters_tokenizer):
    examples = [Example("p", "ab", "cdefg", 1), Example("q", "abcd", "c", 0)]
    dataset = TaskDataset(examples, letters_tokenizer, pair_encoding="bi")
    batch = dataset.collate([dataset[0], dataset[1]])
    assert set(batch) == {"a", "b", "labels", "ids"}
    assert batch["a"]["input_ids"].shape == (2, 6) and batch["b"]["input_ids"].shape == (2, 7)
    assert batch["b"]["attention_mask"].sum(dim=1).tolist() == [7, 3]
    assert batch["a"]["token_type_ids"].abs().sum() == 0  # each sentence is segment 0 on its own
    assert dataset.segment_lengths == [(4, 7), (6, 3)] and dataset.lengths == [7, 6]
    moved = batch_to(batch, "cpu")
    assert moved["b"]["input_ids"].equal(batch["b"]["input_ids"]) and moved["ids"] == ["p", "q"]


def test_both_encoding_carries_the_bi_and_the_cross_form_of_each_pair(letters_tokenizer):
    examples = [Example("p", "ab", "cdefg", 1), Example("q", "abcd", "c", 0)]
    both = TaskDataset(examples, letters_tokenizer, pair_encoding="both")
    bi = TaskDataset(examples, letters_tokenizer, pair_encoding="bi")
    cross = TaskDataset(examples, letters_tokenizer, pair_encoding="cross")
    batch = both.collate([both[0], both[1]])
    bi_batch, cross_batch = bi.collate([bi[0], bi[1]]), cross.collate([cross[0], cross[1]])
    assert set(batch) == {"a", "b", "pair", "labels", "ids"}
    for side in ("a", "b"):
        assert all(batch[side][k].equal(bi_batch[side][k]) for k in bi_batch[side])
    assert all(batch["pair"][k].equal(cross_batch[k]) for k in ("input_ids", "token_type_ids", "attention_mask"))
    assert both.lengths == [10, 8]  # bucketed by the longest segment: letters of both + 3 special tokens


def test_test_split_batches_have_ids_but_no_labels(letters_tokenizer):
    dataset = TaskDataset([Example("x", "abc"), Example("y", "de")], letters_tokenizer)
    batch = dataset.collate([dataset[0], dataset[1]])
    assert "labels" not in batch and batch["ids"] == ["x", "y"]


def test_datasets_tokenize_once(letters_tokenizer):
    calls = []

    class CountingTokenizer:
        pad_token_id = letters_tokenizer.pad_token_id

        def __call__(self, *args, **kwargs):
            calls.append(len(args[0]))
            return letters_tokenizer(*args, **kwargs)

    examples = [Example(str(i), "abc" * (1 + i % 5), label=i % 2) for i in range(2500)]
    dataset = TaskDataset(examples, CountingTokenizer())
    assert calls == [1024, 1024, 452]  # built in chunks, each text once
    for batch in BucketBatchSampler(dataset.lengths, batch_size=64):
        dataset.collate([dataset[i] for i in batch])
    assert len(calls) == 3


def test_mixed_or_misconfigured_datasets_are_refused(letters_tokenizer):
    with pytest.raises(ValueError, match="mixed examples"):
        TaskDataset([Example("a", "ab"), Example("b", "ab", "cd")], letters_tokenizer)
    with pytest.raises(ValueError, match="choose one of cross, bi"):
        TaskDataset([Example("a", "ab", "cd")], letters_tokenizer, pair_encoding="siamese")


def test_bucketing_sampler_covers_every_example_once_and_is_seeded():
    lengths = np.random.default_rng(0).integers(3, 60, size=1003)
    sampler = BucketBatchSampler(lengths, batch_size=16, seed=7, pool_batches=4)
    first, second = list(sampler), list(sampler)  # iterating advances the epoch
    for epoch in (first, second):
        assert sorted(i for batch in epoch for i in batch) == list(range(1003))
        assert len(epoch) == len(sampler) == 63 and sorted(map(len, epoch))[0] == 11
    assert first != second
    assert first == BucketBatchSampler(lengths, batch_size=16, seed=7, pool_batches=4).batches(0)
    assert first != BucketBatchSampler(lengths, batch_size=16, seed=8, pool_batches=4).batches(0)
    sampler.set_epoch(0)
    assert list(sampler) == first


def test_bucketing_cuts_padding_on_sst(mirror, letters_tokenizer):
    dataset = TaskDataset(load_split("sst", "dev", mirror), letters_tokenizer)
    bucketed = real_token_fraction(dataset, BucketBatchSampler(dataset.lengths, batch_size=32).batches(0))
    shuffled = np.random.default_rng(0).permutation(len(dataset))
    plain = real_token_fraction(dataset, [shuffled[i:i + 32] for i in range(0, len(dataset), 32)])
    assert plain < 0.6 < 0.9 < bucketed <= 1.0


def test_real_token_fraction_by_hand(letters_tokenizer):
    dataset = TaskDataset([Example("a", "a"), Example("b", "abc"), Example("c", "abcdefgh")], letters_tokenizer)
    # lengths 3, 5, 10: batch [0, 1] pads to 5 (8 real of 10), batch [2] is all real (10 of 10)
    assert real_token_fraction(dataset, [[0, 1], [2]]) == pytest.approx(18 / 20)
