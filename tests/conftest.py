"""Shared fixtures: the pretrained MiniLM folder, a tiny random model, real sentences, the data mirror."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from minbert_lib.config import model_config

SENTENCES = [
    "hello world",
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on stage, and the crowd sings along loudly.",
    "Is this the right way to learn how BERT works?",
    "ok",
]


@pytest.fixture(scope="session")
def minilm_dir():
    """The installed all-MiniLM-L6-v2 folder (`make setup` installs it)."""
    from minbert_lib.weights import resolve_model_dir

    return resolve_model_dir("minilm-l6")


@pytest.fixture(scope="session")
def minilm_batch():
    from minbert_lib.tokenizer import Tokenizer

    return Tokenizer.from_pretrained("minilm-l6")(SENTENCES)


@pytest.fixture
def tiny_config():
    return model_config("tiny")


@pytest.fixture
def tiny_batch(tiny_config):
    """Random ids for the tiny config: 3 sequences of lengths 7, 4 and 2, padded to 7."""
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(1, tiny_config.vocab_size, (3, 7), generator=generator)
    attention_mask = torch.zeros(3, 7, dtype=torch.long)
    for row, length in enumerate((7, 4, 2)):
        attention_mask[row, :length] = 1
    input_ids = input_ids * attention_mask  # pad id 0 after each sequence
    token_type_ids = torch.zeros_like(input_ids)
    token_type_ids[0, 4:] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


@pytest.fixture(scope="session")
def mirror():
    """The folder of CS224N data files the data tests read: $MINBERT_DATA_MIRROR when set,
    else `../shared/data` beside the repository (as on CI). Skips the test when there is none."""
    folder = Path(os.environ.get("MINBERT_DATA_MIRROR") or Path(__file__).resolve().parents[2] / "shared" / "data")
    if not (folder / "ids-sst-dev.csv").is_file():
        pytest.skip(f"no course data mirror at {folder}: set MINBERT_DATA_MIRROR to a folder of the CS224N files")
    return folder
