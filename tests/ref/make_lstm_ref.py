#!/usr/bin/python3
"""make_lstm_ref.py: PyTorch reference values for tests/test_lstm.c (the recurrent layers of
src/nn/lstm.c).

Writes lstm_ref.safetensors with Debian's python3-torch (1.13) and numpy: for each case, a
torch.nn.LSTM or torch.nn.GRU (one layer, batch_first=False) with weights drawn here, its
input, initial states (or none: torch's zeros), outputs, and the gradients of the fixed loss
  L = sum(wy * y) + sum(whn * h_n) [+ sum(wcn * c_n) for the LSTM]
with respect to the input, the initial states and every parameter. Tensor names:
  <case>.dims           int64 [cell (0 LSTM, 1 GRU), T, B, I, H, D, has_initial_state]
  <case>.x .h0 .c0 .wy .whn .wcn    inputs and loss weights
  <case>.<param>        the module's state_dict entries ("lstm_bi.weight_hh_l0_reverse")
  <case>.y .hn .cn      outputs
  <case>.dx .dh0 .dc0 <case>.grad.<param>   gradients
Run: make ref   (or /usr/bin/python3 tests/ref/make_lstm_ref.py from the repo root)
"""
import os, sys
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_nn_ref import write_st  # noqa: E402

VERSION = "1"
OUT = os.path.dirname(os.path.abspath(__file__))
torch.set_num_threads(1)
rng = np.random.default_rng(2018)
T, B, I, H = 5, 3, 4, 6


def t32(a, grad=False):
    return torch.tensor(np.asarray(a, np.float32), requires_grad=grad)


def f32(t):
    return t.detach().numpy().astype(np.float32)


def case(name, cell, D, state):
    mod = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(I, H, bidirectional=D == 2)
    out = {}
    with torch.no_grad():  # weights wider than torch's init (1/sqrt(6) = 0.41): gates saturate more
        for pname, p in mod.named_parameters():
            p.copy_(t32(rng.uniform(-0.8, 0.8, p.shape)))
    x = t32(rng.uniform(-1, 1, (T, B, I)), True)
    h0 = t32(rng.uniform(-1, 1, (D, B, H)), True)
    c0 = t32(rng.uniform(-1, 1, (D, B, H)), True)
    if cell == "lstm":
        y, (hn, cn) = mod(x, (h0, c0)) if state else mod(x)
    else:
        y, hn = mod(x, h0) if state else mod(x)
        cn = None
    wy = t32(rng.uniform(-1, 1, y.shape))
    whn = t32(rng.uniform(-1, 1, hn.shape))
    loss = (wy * y).sum() + (whn * hn).sum()
    if cn is not None:
        wcn = t32(rng.uniform(-1, 1, cn.shape))
        loss = loss + (wcn * cn).sum()
        out[name + ".wcn"], out[name + ".cn"] = f32(wcn), f32(cn)
    loss.backward()
    out[name + ".dims"] = np.array([0 if cell == "lstm" else 1, T, B, I, H, D, int(state)], np.int64)
    out[name + ".x"], out[name + ".dx"] = f32(x), f32(x.grad)
    out[name + ".wy"], out[name + ".whn"], out[name + ".y"], out[name + ".hn"] = f32(wy), f32(whn), f32(y), f32(hn)
    if state:
        out[name + ".h0"], out[name + ".dh0"] = f32(h0), f32(h0.grad)
        if cell == "lstm":
            out[name + ".c0"], out[name + ".dc0"] = f32(c0), f32(c0.grad)
    for pname, p in mod.named_parameters():
        out[name + "." + pname] = f32(p)
        out[name + ".grad." + pname] = f32(p.grad)
    return out


if __name__ == "__main__":
    tensors = {}
    for name, cell, D, state in [("lstm_uni", "lstm", 1, True), ("lstm_bi", "lstm", 2, True),
                                 ("lstm_bi_zero", "lstm", 2, False), ("gru_uni", "gru", 1, True),
                                 ("gru_bi", "gru", 2, True), ("gru_bi_zero", "gru", 2, False)]:
        tensors.update(case(name, cell, D, state))
    meta = {"generator": "tests/ref/make_lstm_ref.py", "version": VERSION, "torch": torch.__version__}
    write_st(os.path.join(OUT, "lstm_ref.safetensors"), tensors, meta)
    print("wrote", os.path.join(OUT, "lstm_ref.safetensors"))
