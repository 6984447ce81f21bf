"""Trainer: bit-identical histories across separate processes on the CPU."""
from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = r"""
import json, torch
from torch import nn
from movierec_nb.data import synthetic_frames
from movierec_nb.splits import split, LeaveOneOut, binarize
from movierec_nb.train import Trainer, TrainConfig, ImplicitPairs, ranking_validator
r = synthetic_frames(200, 400, 8000, seed=0)["ratings"]
s = split(binarize(r), LeaveOneOut())
torch.manual_seed(0)
m = nn.Module()
class M(nn.Module):
    def __init__(s2):
        super().__init__(); s2.u = nn.Embedding(s.n_users, 8); s2.i = nn.Embedding(s.n_items, 8)
        s2.f = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))
    def forward(s2, u, i): return torch.sigmoid(s2.f(torch.cat([s2.u(u), s2.i(i)], 1))).squeeze(1)
t = Trainer(M(), TrainConfig(epochs=3, batch_size=256, progress=False, device="cpu", monitor="val_HR@10", mode="max"),
            ImplicitPairs(s, k=4), [ranking_validator(s)])
print(json.dumps(t.fit().drop(columns="time_s").to_dict(orient="list")))
"""


def _history() -> dict:
    p = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_two_processes_give_identical_histories():
    a, b = _history(), _history()
    assert a == b
    assert len(a["epoch"]) == 3 and a["train_loss"][2] < a["train_loss"][0]
