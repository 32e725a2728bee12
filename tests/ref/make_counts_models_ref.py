#!/usr/bin/python3
"""make_counts_models_ref.py: PyTorch references of whole VAEs with a count likelihood
(--likelihood nb | zinb) for tests/test_models_counts.c, in the format of make_models_ref.py
(the C side is mt_reference in tests/models_t.h).

The model is scVI's VAE (scvi/module/_vae.py with log_variational and use_observed_lib_size) on
knobs' mlp architecture: the encoder (fc1, fc2 ReLU, fc_mu, fc_logvar) reads log1p(x); the
decoder (fc1..fc3 with tanh) ends in px_scale_decoder (logits; px_scale = softmax over genes)
and, for zinb, px_dropout_decoder (dropout logits); decoder.px_r (G) is log theta. The mean of
gene g in cell b is library_b * px_scale_bg, the library the cell's observed total count. The
likelihoods are scVI's log_nb_positive / log_zinb_positive (eps 1e-8), written out again here
(as in make_counts_ref.py); recon = batch mean of per-cell sums of -log p; loss = recon +
beta * KL (the beta-VAE's). 10 Adam steps, float64 (the reference) and float32 (the envelope).

Writes models_betavae_nb.safetensors and models_betavae_zinb.safetensors: x (uint8 counts, 2
batches of B cells), eps, terms of 10 steps, sampled first-step gradients of every tensor and
sampled parameters after 10 steps (see make_models_ref.py).
Run: /usr/bin/python3 tests/ref/make_counts_models_ref.py   (from the repo root)
"""
import os, sys
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_models_ref import (record_grads, run_both, save, gauss_kl, tt, make)  # noqa: E402
from make_nn_ref import MlpEncoder  # noqa: E402
from make_counts_ref import log_nb_positive, log_zinb_positive  # noqa: E402

torch.set_num_threads(1)
rng = np.random.default_rng(2468)


class CountDecoder(nn.Module):
    def __init__(s, G, Z, H, zinb):
        super().__init__()
        s.fc1, s.fc2, s.fc3 = nn.Linear(Z, H), nn.Linear(H, H), nn.Linear(H, H)
        s.px_scale_decoder = nn.Linear(H, G)
        if zinb:
            s.px_dropout_decoder = nn.Linear(H, G)
        s.px_r = nn.Parameter(torch.zeros(G))
        s.zinb = zinb

    def forward(s, z):
        h = torch.tanh(s.fc3(torch.tanh(s.fc2(torch.tanh(s.fc1(z))))))
        return s.px_scale_decoder(h), (s.px_dropout_decoder(h) if s.zinb else None)


class CountVAE(nn.Module):
    def __init__(s, G, Z, H, zinb):
        super().__init__()
        s.encoder, s.decoder = MlpEncoder(G, Z, H), CountDecoder(G, Z, H, zinb)


def counts_x(n, B, G):
    """NB counts (gamma-Poisson) with cell-varying libraries, zeros included, below 256."""
    lam = rng.gamma(0.6, 1 / 0.3, G)
    p = lam / lam.sum()
    lib = np.exp(rng.normal(5.0, 0.5, (n, B, 1)))
    theta = 2.0
    y = rng.poisson(rng.gamma(theta, lib * p / theta))
    return np.minimum(y, 255).astype(np.float32)


def count_case(lik):
    B, G, Z, H, lr, beta = 4, 12, 3, 16, 1e-3, 2.0
    zinb = lik == "zinb"
    x, eps = counts_x(2, B, G), rng.standard_normal((10, B, Z)).astype(np.float32)

    def run(dtype):
        vae = make(CountVAE(G, Z, H, zinb), dtype)
        opt = torch.optim.Adam(vae.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
        T, terms = {"x": x.astype(np.uint8), "eps": eps}, []
        for t in range(10):
            opt.zero_grad()
            xt = tt(x[t % 2], dtype)
            mu, lv = vae.encoder(torch.log1p(xt))
            z = mu + torch.exp(lv / 2) * tt(eps[t], dtype)
            logits, pi = vae.decoder(z)
            m = xt.sum(1, keepdim=True) * torch.softmax(logits, dim=1)
            theta = torch.exp(vae.decoder.px_r)
            ll = log_zinb_positive(xt, m, theta, pi) if zinb else log_nb_positive(xt, m, theta)
            recon = -ll.sum(1).mean()
            kl = gauss_kl(mu, lv)
            loss = recon + beta * kl
            loss.backward()
            terms.append([loss.item(), recon.item(), kl.item(), -(recon + kl).item()])
            if t == 0:
                record_grads(T, vae.named_parameters())
            opt.step()
        return T, terms, vae

    T, terms, vae = run_both(run)
    cfg = {"model": "betavae", "arch": "mlp", "likelihood": lik, "C": G, "H": 1, "W": 1, "batch": B,
           "latents": Z, "hidden": H, "lr": lr, "beta": beta}
    save("models_betavae_%s.safetensors" % lik, T, vae, cfg, terms, ["loss", "recon", "kl", "elbo"], 2, 10, 10000)


if __name__ == "__main__":
    torch.manual_seed(0)
    count_case("nb")
    count_case("zinb")
