#!/usr/bin/python3
"""make_head_ref.py: PyTorch reference values for the property heads (tests/test_head.c).

Writes, with Debian's python3-torch and numpy:
  head_reg.safetensors  a regression head: torch.nn.Sequential(Linear(5, 8), ReLU(),
                        Linear(8, 8), ReLU(), Linear(8, 1)) with torch's default initialisation
                        from torch.manual_seed(12), in the file format knobs_head_load reads
                        (the Sequential's state_dict names; metadata kind "knobs_head", Z,
                        hidden, layers, logistic, output).
  head_log.safetensors  a logistic head: Sequential(Linear(3, 6), ReLU(), Linear(6, 1)) from
                        torch.manual_seed(13); its prediction is sigmoid(output).
  head_ref.safetensors  for each head <h> in (reg, log): <h>.codes (7, Z) fixed codes,
                        <h>.dy (7) weights, <h>.y (7) the predictions, <h>.dz (7, Z) the gradient
                        of sum_i dy_i * y_i with respect to the codes.
Everything in float32 (as the C side computes). The safetensors writer is written out here
(the format: u64 header length, JSON header, raw little-endian data), so no package beyond
torch and numpy is needed.
Run: make ref   (or /usr/bin/python3 tests/ref/make_head_ref.py from the repo root)
"""
import json, os, sys
import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_nn_ref import write_st  # noqa: E402

VERSION = "1"
OUT = os.path.dirname(os.path.abspath(__file__))
torch.set_num_threads(1)


def head(Z, hidden, layers, seed):
    torch.manual_seed(seed)
    mods, w = [], Z
    for _ in range(layers):
        mods += [nn.Linear(w, hidden), nn.ReLU()]
        w = hidden
    mods.append(nn.Linear(w, 1))
    return nn.Sequential(*mods)


def head_meta(Z, hidden, layers, logistic):
    return {"format": "pt", "kind": "knobs_head", "knobs_version": "0.2.0", "Z": Z, "hidden": hidden,
            "layers": layers, "logistic": logistic, "output": "probability" if logistic else "value",
            "generator": "tests/ref/make_head_ref.py", "version": VERSION}


ref = {}
rng = np.random.default_rng(2024)
for tag, (Z, hidden, layers, logistic, seed) in {"reg": (5, 8, 2, 0, 12), "log": (3, 6, 1, 1, 13)}.items():
    seq = head(Z, hidden, layers, seed)
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in seq.state_dict().items()}
    write_st(os.path.join(OUT, "head_%s.safetensors" % tag), sd, head_meta(Z, hidden, layers, logistic))
    codes = rng.normal(size=(7, Z)).astype(np.float32)
    dy = rng.uniform(-1.5, 1.5, size=7).astype(np.float32)
    z = torch.tensor(codes, requires_grad=True)
    out = seq(z)[:, 0]
    y = torch.sigmoid(out) if logistic else out
    (y * torch.tensor(dy)).sum().backward()
    ref[tag + ".codes"] = codes
    ref[tag + ".dy"] = dy
    ref[tag + ".y"] = y.detach().numpy().astype(np.float32)
    ref[tag + ".dz"] = z.grad.numpy().astype(np.float32)

write_st(os.path.join(OUT, "head_ref.safetensors"), ref,
         {"generator": "tests/ref/make_head_ref.py", "version": VERSION, "torch": torch.__version__})
print("wrote head_reg, head_log, head_ref .safetensors in", OUT)
