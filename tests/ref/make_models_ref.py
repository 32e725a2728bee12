#!/usr/bin/python3
"""make_models_ref.py: PyTorch reference values for the issue-4 models (tests/test_models_*.c).

Writes, with Debian's python3-torch (1.13) and numpy, one file per case:
  models_<model>_<arch>.safetensors
holding the inputs (x as uint8, the noise or InfoGAN's codes, FactorVAE's permutations, the
label variants' masks of changed latents, iVAE's classes u), the loss terms of 10 Adam steps (every optimizer of
the model), sampled entries of every parameter gradient of the first step (256 per tensor, or
the whole tensor if smaller; both players for two-optimizer models) and 16 sampled entries of
every parameter and buffer after the 10 steps.
Each case runs twice from the same float32 parameters and inputs: in float64, the reference
(terms, grad.*, after.*), and in float32 (terms32, after32.*), whose distance from the float64
run measures how far float32 arithmetic alone carries a run: Adam's first steps move every
parameter by about +-lr whatever the size of its gradient, so rounding that flips the sign of
a near-zero gradient moves that parameter by 2 lr, and a GAN amplifies that over the steps.
The C test asks knobs to stay within a small multiple of that float32 envelope. Parameters are not stored: both sides set them
from an integer hash (make_nn_ref.param_formula) seeded by the state_dict position: linear
and conv weights and biases u / sqrt(fan_in), batch norm weight 1 + u / 10, bias u / 10.
The losses are written out here independently of the C code, from the papers and
disentanglement_lib, so the C test compares two implementations of the same formulas.
Run: /usr/bin/python3 tests/ref/make_models_ref.py   (from the repo root; with the argument
"ivae" only the iVAE files)
"""
import json, math, os, sys
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_nn_ref import (write_st, f32, ConvEncoder, ConvDecoder, MlpEncoder, MlpDecoder)  # noqa: E402

VERSION = "1"
OUT = os.path.dirname(os.path.abspath(__file__))
LOG2PI = math.log(2 * math.pi)
torch.set_num_threads(1)
rng = np.random.default_rng(4321)


def hash_u(n, seed):
    """u_i in [-1, 1) from an integer hash, in float64 (as mt_hash_u in tests/models_t.h)."""
    i = np.arange(n, dtype=np.uint64)
    h = (i * np.uint64(2654435761) + np.uint64(seed) * np.uint64(40503) + np.uint64(12345)) % np.uint64(1 << 32)
    h = (h ^ (h >> np.uint64(15))) * np.uint64(2246822519) % np.uint64(1 << 32)
    h = h ^ (h >> np.uint64(13))
    return h.astype(np.float64) / 4294967296.0 * 2.0 - 1.0


def set_params(model):
    sd = model.state_dict()
    for idx, (name, t) in enumerate(sd.items()):
        base = name.rsplit(".", 1)[0]
        w = sd.get(base + ".weight")
        n = t.numel()
        if w is not None and w.dim() >= 2:
            fan_in = w.shape[1] * int(np.prod(w.shape[2:]))
            v = hash_u(n, idx) * (1.0 / np.sqrt(fan_in))
        elif name.endswith("running_var"):
            v = np.ones(n)
        elif name.endswith("running_mean") or name.endswith("num_batches_tracked"):
            v = np.zeros(n)
        else:  # batch norm affine
            v = (1.0 if name.endswith(".weight") else 0.0) + hash_u(n, idx) / 10
        t.copy_(torch.tensor(v.astype(np.float32 if t.dtype == torch.float32 else np.int64)).reshape(t.shape))


def record_grads(T, named):
    for gi, (name, p) in enumerate(named):
        g = f32(p.grad).flatten()
        k = min(g.size, 256)
        pick = np.arange(g.size, dtype=np.int64) if g.size <= 256 else (np.arange(k, dtype=np.int64) * 2654435761 + 7 * gi) % g.size
        T["grad." + name + ".idx"] = pick
        T["grad." + name + ".val"] = g[pick]


def record_after(T, model, key="after"):
    for idx, (name, p) in enumerate(model.state_dict().items()):
        flat = p.flatten().numpy().astype(np.float64)
        pick = (np.arange(16, dtype=np.int64) * 2654435761 + idx) % flat.size
        T[key + "." + name + ".idx"] = pick
        T[key + "." + name + ".val"] = flat[pick].astype(np.float32)


def run_both(case, *args):
    """The case in float64 (the reference) and in float32 (the envelope)."""
    T, terms, model = case(torch.float64, *args)
    T32, terms32, model32 = case(torch.float32, *args)
    T["terms32"] = np.array(terms32, np.float64)
    for k, v in T32.items():
        if k.startswith("grad.") and k.endswith(".val"):
            T["grad32." + k[5:]] = v
    record_after(T, model32, "after32")
    return T, terms, model


def save(name, T, model, cfg, terms, term_names, n_x, n_eps, data_n=737280):
    T["terms"] = np.array(terms, np.float64)
    record_after(T, model)
    meta = {"generator": "tests/ref/make_models_ref.py", "version": VERSION, "torch": torch.__version__,
            "config": json.dumps(cfg), "param_order": json.dumps(list(model.state_dict().keys())),
            "term_names": json.dumps(term_names), "n_x": n_x, "n_eps": n_eps, "data_n": data_n}
    write_st(os.path.join(OUT, name), T, meta)
    print("wrote", name, os.path.getsize(os.path.join(OUT, name)), "bytes")


def bce(logits, x):  # batch mean of per-example sums, as disentanglement_lib
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1).mean()


def gauss_kl(mu, lv):
    return (0.5 * (mu ** 2 + lv.exp() - lv - 1).sum(1)).mean()


class VAE(nn.Module):
    def __init__(s, arch, C, HW, Z, H):
        super().__init__()
        D = C * HW * HW  # noqa
        if arch == "conv":
            s.encoder, s.decoder = ConvEncoder(C, Z), ConvDecoder(C, Z)
        else:
            s.encoder, s.decoder = MlpEncoder(D, Z, H), MlpDecoder(D, Z, H)


def base_cfg(model, arch, B, Z, H, lr, HW=64):
    return {"model": model, "arch": arch, "likelihood": "bernoulli", "C": 1, "H": HW, "W": HW, "batch": B,
            "latents": Z, "hidden": H, "lr": lr}


def binary_x(n, B, HW=64):
    return (rng.uniform(0, 1, (n, B, 1, HW, HW)) > 0.7).astype(np.float32)


def tt(a, dtype):
    return torch.tensor(a).to(dtype)


def make(model, dtype):
    set_params(model)  # float32 values, exactly representable in float64
    return model.to(dtype)


# ---- beta-TCVAE --------------------------------------------------------------------------------
def tc_terms(z, mu, lv, N, mss):
    """Chen et al. 2018's minibatch estimators in double: mws with log(N M), mss with the
    stratified weights (own 1/N, the next sample (N-M+1)/(N(M-1)), the others 1/(M-1))."""
    z, mu, lv = z.double(), mu.double(), lv.double()
    M, Z = z.shape
    e = -0.5 * ((z[:, None, :] - mu[None]) ** 2 * torch.exp(-lv[None]) + lv[None] + LOG2PI)  # (i, j, d)
    if mss:
        W = torch.full((M, M), -math.log(M - 1), dtype=torch.float64)
        for i in range(M):
            W[i, (i + 1) % M] = math.log((N - M + 1) / (N * (M - 1)))
            W[i, i] = -math.log(N)
    else:
        W = torch.full((M, M), -math.log(N * M), dtype=torch.float64)
    logqz = torch.logsumexp(W + e.sum(2), dim=1)
    logprod = torch.logsumexp(W[:, :, None] + e, dim=1).sum(1)
    logqzx = e[torch.arange(M), torch.arange(M)].sum(1)
    logpz = (-0.5 * (z ** 2 + LOG2PI)).sum(1)
    return (logqzx - logqz).mean(), (logqz - logprod).mean(), (logprod - logpz).mean()


def tcvae_case(arch, estimator):
    B, Z, H, lr, N = 4, 10, 64, 1e-3, 737280
    alpha, beta, gamma = 0.5, 6.0, 1.5
    x, eps = binary_x(2, B), rng.standard_normal((10, B, Z)).astype(np.float32)

    def run(dtype):
        vae = make(VAE(arch, 1, 64, Z, H), dtype)
        opt = torch.optim.Adam(vae.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
        T, terms = {"x": x.astype(np.uint8), "eps": eps}, []
        for t in range(10):
            opt.zero_grad()
            xt = tt(x[t % 2], dtype)
            mu, lv = vae.encoder(xt)
            z = mu + torch.exp(lv / 2) * tt(eps[t], dtype)
            recon = bce(vae.decoder(z).view_as(xt), xt)
            kl = gauss_kl(mu, lv)
            mi, tc, dw = tc_terms(z, mu, lv, N, estimator == "mss")
            loss = recon + alpha * mi + beta * tc + gamma * dw
            loss.backward()
            terms.append([loss.item(), recon.item(), kl.item(), mi.item(), tc.item(), dw.item(), -(recon + kl).item()])
            if t == 0:
                record_grads(T, vae.named_parameters())
            opt.step()
        return T, terms, vae

    T, terms, vae = run_both(run)
    cfg = base_cfg("tcvae", arch, B, Z, H, lr)
    cfg.update({"tcvae_alpha": alpha, "tcvae_beta": beta, "tcvae_gamma": gamma, "estimator": estimator})
    save("models_tcvae_%s.safetensors" % arch, T, vae, cfg, terms,
         ["loss", "recon", "kl", "mi", "tc", "dwkl", "elbo"], 2, 10, N)


# ---- DIP-VAE -----------------------------------------------------------------------------------
def dipvae_case(arch, kind):
    B, Z, H, lr = 4, 10, 64, 1e-3
    lod = 5.0
    ld = (10.0 if kind == 1 else 1.0) * lod
    x, eps = binary_x(2, B), rng.standard_normal((10, B, Z)).astype(np.float32)

    def run(dtype):
        vae = make(VAE(arch, 1, 64, Z, H), dtype)
        opt = torch.optim.Adam(vae.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
        T, terms = {"x": x.astype(np.uint8), "eps": eps}, []
        for t in range(10):
            opt.zero_grad()
            xt = tt(x[t % 2], dtype)
            mu, lv = vae.encoder(xt)
            z = mu + torch.exp(lv / 2) * tt(eps[t], dtype)
            recon = bce(vae.decoder(z).view_as(xt), xt)
            kl = gauss_kl(mu, lv)
            m = mu.double()
            C = (m[:, :, None] * m[:, None, :]).mean(0) - m.mean(0)[:, None] * m.mean(0)[None, :]
            if kind == 2:
                C = C + torch.diag(lv.double().exp().mean(0))
            diag = torch.diagonal(C)
            reg = lod * (C - torch.diag(diag)).pow(2).sum() + ld * (diag - 1).pow(2).sum()
            loss = recon + kl + reg
            loss.backward()
            terms.append([loss.item(), recon.item(), kl.item(), reg.item(), -(recon + kl).item()])
            if t == 0:
                record_grads(T, vae.named_parameters())
            opt.step()
        return T, terms, vae

    T, terms, vae = run_both(run)
    name = "dipvae%d" % kind
    cfg = base_cfg(name, arch, B, Z, H, lr)
    cfg.update({"lambda_od": lod})  # lambda_d left to the model's default
    save("models_%s_%s.safetensors" % (name, arch), T, vae, cfg, terms, ["loss", "recon", "kl", "dip", "elbo"], 2, 10)


# ---- FactorVAE ---------------------------------------------------------------------------------
class Discriminator(nn.Module):
    def __init__(s, Z, hidden=1000, layers=6):
        super().__init__()
        s.n = layers + 1
        for l in range(layers):
            setattr(s, "fc%d" % (l + 1), nn.Linear(Z if l == 0 else hidden, hidden))
        setattr(s, "fc%d" % (layers + 1), nn.Linear(hidden, 2))

    def forward(s, z):
        for l in range(1, s.n):
            z = F.leaky_relu(getattr(s, "fc%d" % l)(z), 0.2)
        return getattr(s, "fc%d" % s.n)(z)


class FactorVAE(VAE):
    def __init__(s, arch, Z, H):
        super().__init__(arch, 1, 64, Z, H)
        s.discriminator = Discriminator(Z)


def factorvae_case(arch):
    B, Z, H, lr, dlr, gamma = 4, 10, 64, 1e-3, 5e-4, 35.0
    x, eps = binary_x(2, B), rng.standard_normal((10, B, Z)).astype(np.float32)
    perm = np.stack([np.stack([rng.permutation(B) for _ in range(Z)]) for _ in range(10)]).astype(np.int64)  # (10,Z,B)

    def run(dtype):
        model = make(FactorVAE(arch, Z, H), dtype)
        vae_params = list(model.encoder.parameters()) + list(model.decoder.parameters())
        d_params = list(model.discriminator.parameters())
        opt = torch.optim.Adam(vae_params, lr=lr, betas=(0.9, 0.999), eps=1e-8)
        optd = torch.optim.Adam(d_params, lr=dlr, betas=(0.5, 0.9), eps=1e-8)
        T, terms = {"x": x.astype(np.uint8), "eps": eps, "perm": perm}, []
        for t in range(10):
            with torch.no_grad():  # the second, independent batch: permuted codes
                mu2, lv2 = model.encoder(tt(x[(t + 1) % 2], dtype))
                z2 = mu2 + torch.exp(lv2 / 2) * tt(eps[(t + 1) % 10], dtype)
                zp = torch.stack([z2[perm[t % 10][d], d] for d in range(Z)], 1)
            xt = tt(x[t % 2], dtype)
            mu, lv = model.encoder(xt)
            z = mu + torch.exp(lv / 2) * tt(eps[t % 10], dtype)
            recon = bce(model.decoder(z).view_as(xt), xt)
            kl = gauss_kl(mu, lv)
            lz = model.discriminator(z)
            tc = (lz[:, 0] - lz[:, 1]).mean()
            vae_loss = recon + kl + gamma * tc
            d_loss = 0.5 * F.cross_entropy(model.discriminator(z.detach()), torch.zeros(B, dtype=torch.long)) + \
                0.5 * F.cross_entropy(model.discriminator(zp), torch.ones(B, dtype=torch.long))
            gv = torch.autograd.grad(vae_loss, vae_params)
            gd = torch.autograd.grad(d_loss, d_params)
            for p, g in zip(vae_params + d_params, list(gv) + list(gd)):
                p.grad = g
            terms.append([vae_loss.item(), recon.item(), kl.item(), tc.item(), d_loss.item(), -(recon + kl).item()])
            if t == 0:
                record_grads(T, model.named_parameters())
            opt.step()
            optd.step()
        return T, terms, model

    T, terms, model = run_both(run)
    cfg = base_cfg("factorvae", arch, B, Z, H, lr)
    cfg.update({"factorvae_gamma": gamma, "disc_lr": dlr, "disc_beta1": 0.5, "disc_beta2": 0.9,
                "disc_hidden": 1000, "disc_layers": 6})
    save("models_factorvae_%s.safetensors" % arch, T, model, cfg, terms,
         ["loss", "recon", "kl", "tc", "disc_loss", "elbo"], 2, 10)


# ---- weakly supervised -------------------------------------------------------------------------
def weak_case(model_name, arch):
    B, Z, H, lr, beta = 4, 10, 64, 1e-3, 2.0
    ml = "ml" in model_name
    adaptive = model_name.startswith("ada")
    x, eps = binary_x(2, 2 * B), rng.standard_normal((10, 2 * B, Z)).astype(np.float32)
    x[:, B:] = x[:, :B]  # the pairs' second images: the first ones with a patch changed
    x[:, B:, :, 20:40, 10:30] = (rng.uniform(0, 1, (2, B, 1, 20, 20)) > 0.5)
    mask = (rng.uniform(0, 1, (10, B, Z)) > 0.8).astype(np.uint8)

    def run(dtype):
        vae = make(VAE(arch, 1, 64, Z, H), dtype)
        opt = torch.optim.Adam(vae.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
        T, terms = {"x": x.astype(np.uint8), "eps": eps}, []
        if not adaptive:
            T["mask"] = mask
        for t in range(10):
            opt.zero_grad()
            xt = tt(x[t % 2], dtype)
            mu, lv = vae.encoder(xt)
            mu1, mu2, lv1, lv2 = mu[:B], mu[B:], lv[:B], lv[B:]
            if adaptive:  # 2 KL(q1 || q2) per dimension, two equal-width bins
                with torch.no_grad():
                    a, c, m1, m2 = lv1.double(), lv2.double(), mu1.double(), mu2.double()
                    delta = torch.exp(a - c) + (m2 - m1) ** 2 * torch.exp(-c) - 1 + c - a
                    lo, hi = delta.min(1, keepdim=True).values, delta.max(1, keepdim=True).values
                    changed = (hi > lo) & (delta >= lo + 0.5 * (hi - lo))
            else:
                changed = torch.tensor(mask[t % 10]).bool()
            if ml:  # disentanglement_lib's MLVae: the product's mean, variance 2 v1 v2 / (v1 + v2)
                w2 = torch.sigmoid(lv1 - lv2)
                w1 = 1 - w2
                mbar = w1 * mu1 + w2 * mu2
                lbar = math.log(2.0) + lv1 + lv2 - torch.logaddexp(lv1, lv2)
            else:
                mbar = 0.5 * (mu1 + mu2)
                lbar = torch.logaddexp(lv1, lv2) - math.log(2.0)
            mu_t = torch.cat([torch.where(changed, mu1, mbar), torch.where(changed, mu2, mbar)])
            lv_t = torch.cat([torch.where(changed, lv1, lbar), torch.where(changed, lv2, lbar)])
            z = mu_t + torch.exp(lv_t / 2) * tt(eps[t], dtype)
            recon = bce(vae.decoder(z).view_as(xt), xt)
            kl = gauss_kl(mu_t, lv_t)
            loss = recon + beta * kl
            loss.backward()
            shared = float((~changed).sum().item()) / B
            terms.append([loss.item(), recon.item(), kl.item(), shared, -(recon + kl).item()])
            if t == 0:
                record_grads(T, vae.named_parameters())
            opt.step()
        return T, terms, vae

    T, terms, vae = run_both(run)
    cfg = base_cfg(model_name, arch, B, Z, H, lr)
    cfg.update({"beta": beta})
    save("models_%s_%s.safetensors" % (model_name, arch), T, vae, cfg, terms,
         ["loss", "recon", "kl", "shared", "elbo"], 2, 10)


# ---- InfoGAN -----------------------------------------------------------------------------------
class Generator(nn.Module):
    def __init__(s, arch, gin, C, HW, H):
        super().__init__()
        s.arch, s.HW = arch, HW
        if arch == "conv":
            s.s0 = 8 if HW == 64 else 7
            s.fc1, s.bn1 = nn.Linear(gin, 1024), nn.BatchNorm1d(1024)
            s.fc2, s.bn2 = nn.Linear(1024, 128 * s.s0 * s.s0), nn.BatchNorm1d(128 * s.s0 * s.s0)
            s.deconv1, s.bn3 = nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64)
            if HW == 64:
                s.deconv2, s.bn4 = nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.BatchNorm2d(32)
                s.deconv3 = nn.ConvTranspose2d(32, C, 4, 2, 1)
            else:
                s.deconv2 = nn.ConvTranspose2d(64, C, 4, 2, 1)
        else:
            s.fc1, s.bn1 = nn.Linear(gin, H), nn.BatchNorm1d(H)
            s.fc2, s.bn2 = nn.Linear(H, H), nn.BatchNorm1d(H)
            s.fc3 = nn.Linear(H, C * HW * HW)

    def forward(s, z):
        h = F.relu(s.bn2(s.fc2(F.relu(s.bn1(s.fc1(z))))))
        if s.arch != "conv":
            return torch.sigmoid(s.fc3(h)).view(-1, 1, s.HW, s.HW)
        h = F.relu(s.bn3(s.deconv1(h.view(-1, 128, s.s0, s.s0))))
        if s.HW == 64:
            return torch.sigmoid(s.deconv3(F.relu(s.bn4(s.deconv2(h)))))
        return torch.sigmoid(s.deconv2(h))


class Discriminator2(nn.Module):  # trunk + "out"
    def __init__(s, arch, C, HW, H):
        super().__init__()
        s.arch, s.HW = arch, HW
        if arch == "conv":
            if HW == 64:
                s.conv1, s.conv2, s.bn1 = nn.Conv2d(C, 32, 4, 2, 1), nn.Conv2d(32, 64, 4, 2, 1), nn.BatchNorm2d(64)
                s.conv3, s.bn2 = nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128)
                s.fc1, s.bn3 = nn.Linear(128 * 64, 1024), nn.BatchNorm1d(1024)
            else:
                s.conv1, s.conv2, s.bn1 = nn.Conv2d(C, 64, 4, 2, 1), nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128)
                s.fc1, s.bn2 = nn.Linear(128 * 49, 1024), nn.BatchNorm1d(1024)
            s.out = nn.Linear(1024, 1)
        else:
            s.fc1, s.fc2, s.bn1 = nn.Linear(C * HW * HW, H), nn.Linear(H, H), nn.BatchNorm1d(H)
            s.out = nn.Linear(H, 1)

    def trunk(s, x):
        lr = lambda t: F.leaky_relu(t, 0.1)
        if s.arch != "conv":
            return lr(s.bn1(s.fc2(lr(s.fc1(x.flatten(1))))))
        h = lr(s.conv1(x))
        if s.HW == 64:
            h = lr(s.bn2(s.conv3(lr(s.bn1(s.conv2(h))))))
            return lr(s.bn3(s.fc1(h.flatten(1))))
        h = lr(s.bn1(s.conv2(h)))
        return lr(s.bn2(s.fc1(h.flatten(1))))


class QHead(nn.Module):
    def __init__(s, width, nq):
        super().__init__()
        s.fc1, s.bn1, s.fc2 = nn.Linear(width, 128), nn.BatchNorm1d(128), nn.Linear(128, nq)

    def forward(s, h):
        return s.fc2(F.leaky_relu(s.bn1(s.fc1(h)), 0.1))


class InfoGAN(nn.Module):
    def __init__(s, arch, HW, nz, nc, nk, H):
        super().__init__()
        s.generator = Generator(arch, nz + nc + nk, 1, HW, H)
        s.discriminator = Discriminator2(arch, 1, HW, H)
        s.q = QHead(1024 if arch == "conv" else H, nc + nk)


def infogan_case(arch, HW, fname):
    B, H, glr, dlr, lam = 4, 64, 1e-4, 5e-5, 1.5
    nz, nc, nk = 6, 3, 2
    x = binary_x(2, B, HW)
    codes = np.zeros((10, B, nz + nc + nk), np.float32)
    codes[:, :, :nz] = rng.uniform(-1, 1, (10, B, nz))
    idx = rng.integers(0, nc, (10, B))
    for t in range(10):
        codes[t, np.arange(B), nz + idx[t]] = 1
    codes[:, :, nz + nc:] = rng.uniform(-1, 1, (10, B, nk))

    def info(q, ci, cc):
        return F.cross_entropy(q[:, :nc], ci) + 0.5 * ((q[:, nc:] - cc) ** 2).sum(1).mean() + 0.5 * LOG2PI * nk

    def run(dtype):
        model = make(InfoGAN(arch, HW, nz, nc, nk, H), dtype)
        g_params = list(model.generator.parameters())
        d_params = list(model.discriminator.parameters()) + list(model.q.parameters())
        optg = torch.optim.Adam(g_params, lr=glr, betas=(0.5, 0.999), eps=1e-8)
        optd = torch.optim.Adam(d_params, lr=dlr, betas=(0.5, 0.999), eps=1e-8)
        T, terms = {"x": x.astype(np.uint8), "eps": codes}, []
        D, Q = model.discriminator, model.q
        ones, zeros = torch.ones(B, dtype=dtype), torch.zeros(B, dtype=dtype)
        for t in range(10):
            xt = tt(x[t % 2], dtype)
            ct = tt(codes[t], dtype)
            ci, cc = torch.tensor(idx[t]), ct[:, nz + nc:]
            fake = model.generator(ct)
            optd.zero_grad()
            optg.zero_grad()
            lr_ = D.out(D.trunk(xt)).squeeze(1)
            l_real = F.binary_cross_entropy_with_logits(lr_, ones)
            hf = D.trunk(fake.detach())
            lf = D.out(hf).squeeze(1)
            l_fake = F.binary_cross_entropy_with_logits(lf, zeros)
            info_d = info(Q(hf), ci, cc)
            d_loss = l_real + l_fake + lam * info_d
            d_loss.backward()
            if t == 0:
                record_grads(T, [(n, p) for n, p in model.named_parameters() if not n.startswith("generator.")])
            optd.step()
            optd.zero_grad()
            hg = D.trunk(fake)
            l_gen = F.binary_cross_entropy_with_logits(D.out(hg).squeeze(1), ones)
            info_g = info(Q(hg), ci, cc)
            g_loss = l_gen + lam * info_g
            g_loss.backward()
            if t == 0:
                record_grads(T, [(n, p) for n, p in model.named_parameters() if n.startswith("generator.")])
            optg.step()
            Hc = nk * math.log(2.0) + math.log(nc)
            terms.append([g_loss.item(), d_loss.item(), info_g.item(), Hc - info_g.item(),
                          torch.sigmoid(lr_).mean().item(), torch.sigmoid(lf).mean().item()])
        return T, terms, model

    T, terms, model = run_both(run)
    cfg = base_cfg("infogan", arch, B, 10, H, 1e-4, HW)
    cfg.update({"noise_dim": nz, "cat": nc, "cont": nk, "info_lambda": lam, "gan_g_lr": glr, "gan_d_lr": dlr,
                "gan_beta1": 0.5, "gan_beta2": 0.999})
    save(fname, T, model, cfg, terms, ["g_loss", "d_loss", "info", "mi", "d_real", "d_fake"], 2, 10)


# ---- iVAE --------------------------------------------------------------------------------------
class Prior(nn.Module):
    """p(z|u) = N(mu(u), diag(exp(logvar(u)))): linear maps of one-hot u (a lookup with a bias)."""
    def __init__(s, M, Z, mean):
        super().__init__()
        if mean:
            s.mu = nn.Linear(M, Z)
        s.logvar = nn.Linear(M, Z)


class IVAE(VAE):
    def __init__(s, arch, Z, H, M, mean):
        super().__init__(arch, 1, 64, Z, H)
        s.prior = Prior(M, Z, mean)


def ivae_case(arch, prior_mean):
    """Khemakhem et al. 2020's loss: recon + beta KL(q(z|x) || p(z|u)), written from the
    closed-form KL of two diagonal Gaussians; u given per step (tensor "aux", int64 (10, B))."""
    B, Z, H, lr, M, beta = 4, 10, 64, 1e-3, 5, 1.5
    r = np.random.default_rng(1313 + prior_mean)  # its own stream: the other cases' files stay as they are
    x = (r.uniform(0, 1, (2, B, 1, 64, 64)) > 0.7).astype(np.float32)
    eps = r.standard_normal((10, B, Z)).astype(np.float32)
    aux = r.integers(0, M, (10, B)).astype(np.int64)

    def run(dtype):
        model = make(IVAE(arch, Z, H, M, prior_mean), dtype)
        opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
        T, terms = {"x": x.astype(np.uint8), "eps": eps, "aux": aux}, []
        for t in range(10):
            opt.zero_grad()
            xt = tt(x[t % 2], dtype)
            u = F.one_hot(torch.tensor(aux[t]), M).to(dtype)
            pm = model.prior.mu(u) if prior_mean else torch.zeros(B, Z, dtype=dtype)
            plv = model.prior.logvar(u)
            mu, lv = model.encoder(xt)
            z = mu + torch.exp(lv / 2) * tt(eps[t], dtype)
            recon = bce(model.decoder(z).view_as(xt), xt)
            kl = (0.5 * (plv - lv + (lv.exp() + (mu - pm) ** 2) * torch.exp(-plv) - 1).sum(1)).mean()
            loss = recon + beta * kl
            loss.backward()
            terms.append([loss.item(), recon.item(), kl.item(), -(recon + kl).item()])
            if t == 0:
                record_grads(T, model.named_parameters())
            opt.step()
        return T, terms, model

    T, terms, model = run_both(run)
    cfg = base_cfg("ivae", arch, B, Z, H, lr)
    cfg.update({"beta": beta, "aux_factor": "x", "aux_classes": M, "prior_mean": prior_mean})
    save("models_ivae_%s.safetensors" % arch, T, model, cfg, terms, ["loss", "recon", "kl", "elbo"], 2, 10)


if __name__ == "__main__":
    torch.manual_seed(0)
    if sys.argv[1:] == ["ivae"]:  # only the iVAE files (they draw from their own rng)
        ivae_case("mlp", 1)
        ivae_case("conv", 0)
        sys.exit(0)
    tcvae_case("conv", "mss")
    tcvae_case("mlp", "mws")
    dipvae_case("conv", 1)
    dipvae_case("mlp", 2)
    factorvae_case("conv")
    factorvae_case("mlp")
    weak_case("gvae", "conv")
    weak_case("mlvae", "mlp")
    weak_case("adagvae", "conv")
    weak_case("adamlvae", "mlp")
    infogan_case("conv", 64, "models_infogan_conv.safetensors")
    infogan_case("conv", 28, "models_infogan_conv28.safetensors")
    infogan_case("mlp", 64, "models_infogan_mlp.safetensors")
