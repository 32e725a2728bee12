#!/usr/bin/python3
"""torch_lstm.py: PyTorch's torch.nn.LSTM / torch.nn.GRU (one layer, batch_first=False, no
initial state) at the sizes of bench_lstm, its reference: the median time of a forward under
torch.no_grad() and of a training step's share (zero the gradients, forward,
L = sum(wy * y) + sum(whn * h_n) [+ sum(wcn * c_n)], backward into the input and every
parameter). Same output line as bench_lstm.
usage: torch_lstm.py lstm|gru DIRS THREADS [T B I H]"""
import json, sys, time
import torch

cell, D, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
T, B, I, H = [int(a) for a in sys.argv[4:8]] + [8, 64, 256, 256][len(sys.argv[4:8]):]
torch.set_num_threads(threads)
torch.manual_seed(1)
mod = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(I, H, bidirectional=D == 2)
x = (torch.rand(T, B, I) * 2 - 1).requires_grad_()
wy, whn, wcn = torch.rand(T, B, D * H) * 2 - 1, torch.rand(D, B, H) * 2 - 1, torch.rand(D, B, H) * 2 - 1


def fwd():
    with torch.no_grad():
        mod(x)


def step():
    mod.zero_grad(set_to_none=False)
    x.grad = None
    if cell == "lstm":
        y, (hn, cn) = mod(x)
        loss = (wy * y).sum() + (whn * hn).sum() + (wcn * cn).sum()
    else:
        y, hn = mod(x)
        loss = (wy * y).sum() + (whn * hn).sum()
    loss.backward()


med, best = [], []
for fn in (fwd, step):
    for _ in range(3):
        fn()
    times, end = [], time.perf_counter() + 1.0
    while len(times) < 20 or time.perf_counter() < end:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    med.append(times[len(times) // 2])
    best.append(times[0])
G = 4 if cell == "lstm" else 3
macs = 3.0 * D * T * B * G * H * (I + H)
print(json.dumps({"impl": "torch", "cell": cell, "dirs": D, "threads": threads, "T": T, "B": B, "I": I,
                  "H": H, "fwd_ms": round(med[0] * 1e3, 3), "step_ms": round(med[1] * 1e3, 3),
                  "fwd_best_ms": round(best[0] * 1e3, 3), "step_best_ms": round(best[1] * 1e3, 3),
                  "gflops": round(2 * macs / med[1] * 1e-9, 1)}))
