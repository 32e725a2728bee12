#!/usr/bin/python3
"""torch_train.py: PyTorch's training step for the same beta-VAE (the module of
tests/ref/make_nn_ref.py), the reference for bench_train. Same output line as bench_train.
usage: torch_train.py ARCH BATCH THREADS [STEPS]
Run it with OMP_WAIT_POLICY=PASSIVE for its best 2-thread time (see
../shared/reference/performance.md); bench/run.sh runs both policies and keeps the faster."""
import os, sys
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_nn_ref import VAE  # noqa: E402
from torch_step import time_steps  # noqa: E402

arch, B, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
steps = int(sys.argv[4]) if len(sys.argv) > 4 else 30
torch.set_num_threads(threads)
vae = VAE(arch, 1, 10, 1200)
opt = torch.optim.Adam(vae.parameters(), lr=1e-4)
x = torch.tensor((np.random.default_rng(1).uniform(0, 1, (B, 1, 64, 64)) < 0.1).astype(np.float32))
eps = torch.randn(B, 10)


def step():
    opt.zero_grad()
    mu, lv = vae.encoder(x)
    z = mu + torch.exp(lv / 2) * eps
    logits = vae.decoder(z).view_as(x)
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3)).mean()
    kl = (0.5 * (mu ** 2 + lv.exp() - lv - 1).sum(1)).mean()
    (recon + 4 * kl).backward()
    opt.step()


time_steps(step, steps, B, {"impl": "torch", "arch": arch, "batch": B, "threads": threads})
