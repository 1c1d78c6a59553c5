"""minbert_lib: the reference library of the minBERT course kit.

Every piece the notebooks teach lives here, tested. Read it in five layers, each using only
the ones above it (and errors.py, the kit's one-line errors, and download.py, files fetched
with a progress bar and a checksum, which all of them use):

    model       config.py (model sizes by name) . tokenizer.py . attention.py . model.py (BertModel)
                weights.py (pretrained weights) . optim.py (AdamW)
                transformers_check.py (the kit's BertModel against transformers', for tests and demos)
    tasks       losses.py . evaluate.py (metrics, prediction files) . registry.py (the data files)
                tasks.py (the task table: each task's columns, labels, loss, metrics, floor, predictions)
    data        data.py (reading the files) . fetch.py (`minbert data fetch`) . batching.py (tensors, buckets)
    training    multitask.py (encoder + a head per task) . schedules.py (BL, TM1, TM2)
                experiments.py (the report's rows, budgets) . overrides.py (--set key=value)
                device.py . runs.py (run folders)
                train.py (the loop) . build.py (names -> objects: `minbert train`)
                predictions.py . plots.py . report.py (the report's numbers
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
    05_multitask    multitask.py, tasks.py (task_loss), schedules.py grading/multitask.py
    06_extensions   multitask.py (COS-S, COS-P, freezing), losses.py (MNR, RW)
                                                                     grading/extensions.py

To add a head, write a `PairHead` in multitask.py and name it in PARAPHRASE_HEADS or
SIMILARITY_HEADS; to add a task, declare a `Task` in tasks.TASKS (tests/test_tasks.py trains one);
to add a schedule, a `Schedule` in schedules.SCHEDULES. The README's "The trainer in code" says what
each training module owns.
"""
from minbert_lib.config import BertConfig
from minbert_lib.model import BertModel
from minbert_lib.optim import AdamW
from minbert_lib.tokenizer import Tokenizer

__all__ = ["BertConfig", "BertModel", "AdamW", "Tokenizer"]
__version__ = "0.1.0"
