"""What the benchmark scripts share: summaries and the JSON they write."""

import json
import os
import platform

import numpy as np
import sklearn
import torch

import sklearn_mtl


def summarise(values):
    """Mean and standard deviation (``ddof=0``) of a sequence of figures."""
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std())


def write_json(path, args, **figures):
    """Write ``figures`` to ``path`` with the arguments and the machine."""
    record = dict(
        args=vars(args),
        machine=platform.platform(),
        processor=platform.processor(),
        cpu_count=os.cpu_count(),
        torch=torch.__version__,
        sklearn=sklearn.__version__,
        sklearn_mtl=sklearn_mtl.__version__,
        **figures,
    )
    with open(path, "w") as f:
        json.dump(record, f, indent=2)


# These benchmarks train a chosen number of epochs on every row: the stopping
# rule of the releases they were first run with (MLP's), not the defaults'
# early stopping (bench_defaults.py).
FIXED_EPOCHS = {"early_stopping": False, "n_iter_no_change": 10}
