#!/usr/bin/python3
"""make_counts_ref.py: PyTorch reference values of the NB and ZINB likelihoods for tests/test_counts.c.

The formulas are scVI's (scvi-tools scvi/distributions/_negative_binomial.py: log_nb_positive and
log_zinb_positive, eps = 1e-8), written out again below in torch, and scVI's VAE parameterisation
(scvi/module/_vae.py with use_observed_lib_size): px_scale = softmax(logits) over genes,
mu = library * px_scale with library the cell's total count, theta = exp(px_r) per gene.
Loss = mean over cells of the per-cell sum over genes of -log p. Autograd (float64 throughout,
from float32 inputs) gives the gradients w.r.t. logits, px_r and the dropout logits pi.

Writes counts_ref.safetensors with two cases:
  small.*  B=6 cells, G=9 genes: ordinary counts (zeros included), theta in [0.2, 20]
  wide.*   B=4, G=12: counts up to 20000, theta from 1e-3 to 1e5, logits spread over +-12
per case: x, logits, px_r, pi (inputs, F32); nb.loss, zinb.loss (F64 scalars), nb.per,
zinb.per (F64, B), and F32 gradients nb.dlogits, nb.dpx_r, zinb.dlogits, zinb.dpx_r, zinb.dpi.
Run: /usr/bin/python3 tests/ref/make_counts_ref.py (from the repo root, or `make ref`).
"""
import os, sys
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_nn_ref import write_st  # noqa: E402

VERSION = "1"
OUT = os.path.dirname(os.path.abspath(__file__))
EPS = 1e-8


def log_nb_positive(x, mu, theta, eps=EPS):
    log_theta_mu_eps = torch.log(theta + mu + eps)
    return (theta * (torch.log(theta + eps) - log_theta_mu_eps)
            + x * (torch.log(mu + eps) - log_theta_mu_eps)
            + torch.lgamma(x + theta) - torch.lgamma(theta) - torch.lgamma(x + 1))


def log_zinb_positive(x, mu, theta, pi, eps=EPS):
    softplus_pi = F.softplus(-pi)
    log_theta_eps = torch.log(theta + eps)
    log_theta_mu_eps = torch.log(theta + mu + eps)
    pi_theta_log = -pi + theta * (log_theta_eps - log_theta_mu_eps)
    case_zero = F.softplus(pi_theta_log) - softplus_pi
    mul_case_zero = (x < eps).to(x.dtype) * case_zero
    case_non_zero = (-softplus_pi + pi_theta_log + x * (torch.log(mu + eps) - log_theta_mu_eps)
                     + torch.lgamma(x + theta) - torch.lgamma(theta) - torch.lgamma(x + 1))
    mul_case_non_zero = (x > eps).to(x.dtype) * case_non_zero
    return mul_case_zero + mul_case_non_zero


def case(T, name, x, logits, px_r, pi):
    T[name + ".x"], T[name + ".logits"] = x, logits
    T[name + ".px_r"], T[name + ".pi"] = px_r, pi
    for model in ("nb", "zinb"):
        l = torch.tensor(logits.astype(np.float64), requires_grad=True)
        r = torch.tensor(px_r.astype(np.float64), requires_grad=True)
        p = torch.tensor(pi.astype(np.float64), requires_grad=True)
        xx = torch.tensor(x.astype(np.float64))
        lib = xx.sum(1, keepdim=True)
        mu = lib * torch.softmax(l, dim=1)
        theta = torch.exp(r).view(1, -1)
        ll = log_nb_positive(xx, mu, theta) if model == "nb" else log_zinb_positive(xx, mu, theta, p)
        per = -ll.sum(1)
        loss = per.mean()
        loss.backward()
        T[f"{name}.{model}.loss"] = np.array([loss.item()], dtype=np.float64)
        T[f"{name}.{model}.per"] = per.detach().numpy()
        T[f"{name}.{model}.dlogits"] = l.grad.numpy().astype(np.float32)
        T[f"{name}.{model}.dpx_r"] = r.grad.numpy().astype(np.float32)
        if model == "zinb":
            T[f"{name}.{model}.dpi"] = p.grad.numpy().astype(np.float32)


def main():
    rng = np.random.default_rng(1313)
    T = {}
    B, G = 6, 9
    x = rng.negative_binomial(2, 0.3, size=(B, G)).astype(np.float32)
    x[:, 0] = 0  # a gene never seen
    x[1, :] = np.where(x[1, :] > 0, x[1, :], 1)  # a cell without zeros
    case(T, "small", x, rng.normal(0, 1, (B, G)).astype(np.float32),
         np.log(rng.uniform(0.2, 20, G)).astype(np.float32), rng.normal(0, 2, (B, G)).astype(np.float32))
    B, G = 4, 12
    x = rng.negative_binomial(1, 0.01, size=(B, G)).astype(np.float32)
    x[0, :3] = [20000, 0, 1]
    x[2, 5] = 0
    px_r = np.log(np.geomspace(1e-3, 1e5, G)).astype(np.float32)
    case(T, "wide", x, rng.uniform(-12, 12, (B, G)).astype(np.float32), px_r,
         rng.uniform(-8, 8, (B, G)).astype(np.float32))
    write_st(os.path.join(OUT, "counts_ref.safetensors"), T,
             {"generator": "tests/ref/make_counts_ref.py", "version": VERSION, "torch": torch.__version__})


if __name__ == "__main__":
    main()
