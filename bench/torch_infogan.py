#!/usr/bin/python3
"""torch_infogan.py: PyTorch's training step for knobs' InfoGAN (src/models/infogan.c at its
defaults on 64x64 images: 62 noise dimensions, a 3-class categorical code, 5 continuous codes,
lambda 1; Adam lr 1e-3 for the generator, 2e-4 for the discriminator and Q head, betas 0.5 and
0.999), the reference for `bench_train infogan`. The networks are those of
tests/ref/make_models_ref.py (InfoGAN, the module whose gradients and 10 Adam steps
tests/test_models_infogan.c checks knobs against). One step, as infogan.c's ig_step:
  codes (uniform noise, a one-hot class, uniform continuous codes), fake = G(codes);
  discriminator: BCE(D(x), 1) + BCE(D(fake), 0) + lambda L_I(Q(fake)) into the trunk, D and Q,
  then its Adam; generator: BCE(D(fake), 1) + lambda L_I through the updated discriminator,
  into the generator only (backward(inputs=...): no gradient of D's parameters is computed,
  as knobs' input-only backward), then its Adam.
Same output line as bench_train ("params": trainable parameters, to compare with knobs').
usage: torch_infogan.py BATCH THREADS [STEPS]
Run it with OMP_WAIT_POLICY=PASSIVE too; bench/run.sh runs both policies and keeps the faster."""
import math, os, sys
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_models_ref import InfoGAN  # noqa: E402
from torch_step import time_steps  # noqa: E402

B, threads = int(sys.argv[1]), int(sys.argv[2])
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 30
torch.set_num_threads(threads)  # after the import, which sets 1 for the references
nz, nc, nk, lam = 62, 3, 5, 1.0
model = InfoGAN("conv", 64, nz, nc, nk, 1200)
G, D, Q = model.generator, model.discriminator, model.q
g_params = list(G.parameters())
d_params = list(D.parameters()) + list(Q.parameters())
optg = torch.optim.Adam(g_params, lr=1e-3, betas=(0.5, 0.999))
optd = torch.optim.Adam(d_params, lr=2e-4, betas=(0.5, 0.999))
x = torch.tensor((np.random.default_rng(1).uniform(0, 1, (B, 1, 64, 64)) < 0.1).astype(np.float32))
ones, zeros = torch.ones(B), torch.zeros(B)
LOG2PI = math.log(2 * math.pi)


def info(q, ci, cc):  # -log Q(c|x): cross-entropy of the class + unit-variance Gaussian NLL
    return F.cross_entropy(q[:, :nc], ci) + 0.5 * ((q[:, nc:] - cc) ** 2).sum(1).mean() + 0.5 * LOG2PI * nk


def step():
    ci = torch.randint(0, nc, (B,))
    cc = torch.rand(B, nk) * 2 - 1
    codes = torch.cat([torch.rand(B, nz) * 2 - 1, F.one_hot(ci, nc).float(), cc], 1)
    fake = G(codes)
    optd.zero_grad()
    l_real = F.binary_cross_entropy_with_logits(D.out(D.trunk(x)).squeeze(1), ones)
    hf = D.trunk(fake.detach())
    l_fake = F.binary_cross_entropy_with_logits(D.out(hf).squeeze(1), zeros)
    (l_real + l_fake + lam * info(Q(hf), ci, cc)).backward()
    optd.step()
    optg.zero_grad()
    hg = D.trunk(fake)
    l_gen = F.binary_cross_entropy_with_logits(D.out(hg).squeeze(1), ones)
    (l_gen + lam * info(Q(hg), ci, cc)).backward(inputs=g_params)
    optg.step()


time_steps(step, steps, B, {"impl": "torch", "model": "infogan", "arch": "conv", "batch": B, "threads": threads,
                            "params": sum(p.numel() for p in model.parameters())})
