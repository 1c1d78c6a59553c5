"""minbert_lib: the reference library of the minBERT course kit.

Every piece the notebooks teach lives here, tested. Read it in four layers, each using only
the ones above it (and errors.py, the kit's one-line errors, and download.py, files fetched
with a progress bar and a checksum, which all of them use):

    model       config.py (model sizes by name) . tokenizer.py . attention.py . model.py (BertModel)
                weights.py (pretrained weights) . optim.py (AdamW)
    data        registry.py (the data files) . data.py (reading them) . fetch.py (`minbert data fetch`)
                batching.py (tensors, buckets)
    training    multitask.py (encoder + heads) . losses.py . schedules.py (BL, TM1, TM2)
                experiments.py (the report's rows, budgets) . overrides.py (--set key=value)
                device.py . runs.py (run folders)
                train.py (the loop) . build.py (names -> objects: `minbert train`)
                predictions.py . evaluate.py (metrics) . plots.py . report.py (the report's numbers
                and findings) . table2.py (the kit's Table 2 beside them) . leaderboard.py
                cli.py (`minbert`)
    course      notebook.py (what a notebook needs: budgets, device) . checks.py (what test
                cells call) . grading/ (one module per notebook, and the grader) . sanity.py

Which modules each notebook teaches, and the module that grades it:

    01_attention    attention.py                                     grading/attention.py
    02_bert         model.py, weights.py                             grading/bert.py
    03_adamw        optim.py                                         grading/adamw.py
    04_sentiment    model.py (mean_pool), multitask.py (SentimentClassifier)
                                                                     grading/sentiment.py
    05_multitask    multitask.py, losses.py, schedules.py            grading/multitask.py
    06_extensions   multitask.py (COS-S, COS-P, freezing), losses.py (MNR, RW)
                                                                     grading/extensions.py

To add a head, write a `PairHead` in multitask.py and name it in PARAPHRASE_HEADS or
SIMILARITY_HEADS; to add a task or a schedule, start from data.py / registry.py and
schedules.py (a `Schedule` in SCHEDULES); the README's "The trainer in code" says what each training module owns.
"""
from minbert_lib.config import BertConfig
from minbert_lib.model import BertModel
from minbert_lib.optim import AdamW
from minbert_lib.tokenizer import Tokenizer

__all__ = ["BertConfig", "BertModel", "AdamW", "Tokenizer"]
__version__ = "0.1.0"
