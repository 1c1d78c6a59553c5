"""minbert_lib: the reference library of the minBERT course kit.

Every piece the notebooks teach lives here, tested: the configuration, the
WordPiece tokenizer, attention, the BERT model, pretrained weights and AdamW.
"""
from minbert_lib.config import BertConfig
from minbert_lib.model import BertModel
from minbert_lib.optim import AdamW
from minbert_lib.tokenizer import Tokenizer

__all__ = ["BertConfig", "BertModel", "AdamW", "Tokenizer"]
__version__ = "0.1.0"
