#!/usr/bin/python3
"""make_dsvae_ref.py: PyTorch reference values for the dsvae model (tests/test_dsvae.c).

Writes tests/ref/dsvae_ref.safetensors with Debian's python3-torch (1.13) and numpy: two toy
cases, each a torch module with the layers and state_dict names of src/models/dsvae.c, written
here from Li & Mandt 2018 and docs/models.md independently of the C code:
  conv28: conv trunk and decoder on 28x28 frames of 2 channels, T = 3, B = 2, variant full
  mlp6:   mlp trunk and decoder (hidden 16) on 6x6 frames of 1 channel, T = 4, B = 3, factorised
Per case (prefix "<case>."): the inputs x (n_x, B, T*c, H, W) as uint8, the noise (n_eps, B*f_dim
+ T*B*latents: eps_f (B,f_dim) then eps_z (T,B,latents), the C model's test seam), the loss terms
(loss, recon, kl_f, kl_z) of 3 Adam steps, and every parameter's gradient of the first step (the
whole tensor up to 4096 entries, else 4096 sampled entries, as grad.<name>.idx/.val). Computed in
float64 from float32 parameters set by a formula on both sides (see set_params).
Run: /usr/bin/python3 tests/ref/make_dsvae_ref.py   (from the repo root)
"""
import json, os, sys
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_nn_ref import write_st, f32  # noqa: E402

VERSION = "1"
OUT = os.path.dirname(os.path.abspath(__file__))
torch.set_num_threads(1)
rng = np.random.default_rng(1414)


def hash_u(n, seed):
    """u_i in [-1, 1) from an integer hash (as mt_hash_u in tests/models_t.h)."""
    i = np.arange(n, dtype=np.uint64)
    h = (i * np.uint64(2654435761) + np.uint64(seed) * np.uint64(40503) + np.uint64(12345)) % np.uint64(1 << 32)
    h = (h ^ (h >> np.uint64(15))) * np.uint64(2246822519) % np.uint64(1 << 32)
    h = h ^ (h >> np.uint64(13))
    return h.astype(np.float64) / 4294967296.0 * 2.0 - 1.0


def set_params(model):
    """Tensor idx (state_dict position): u * 1/sqrt(prod(shape[1:])) for >= 2 dims, u * 0.2 for
    vectors (biases), u = hash_u(n, idx); rounded to float32."""
    for idx, (name, t) in enumerate(model.state_dict().items()):
        bound = 1.0 / np.sqrt(np.prod(t.shape[1:])) if t.dim() >= 2 else 0.2
        v = (hash_u(t.numel(), idx) * bound).astype(np.float32)
        t.copy_(torch.tensor(v).reshape(t.shape))


class Trunk(nn.Module):
    def __init__(s, arch, c, HW, hidden):
        super().__init__()
        s.arch = arch
        if arch == "conv":  # the 28x28 trunk of kn_vae_declare
            s.conv1, s.conv2 = nn.Conv2d(c, 32, 4, 2, 1), nn.Conv2d(32, 32, 4, 2, 1)
            s.conv3, s.fc1 = nn.Conv2d(32, 64, 3, 2, 1), nn.Linear(1024, 256)
        else:
            s.fc1, s.fc2 = nn.Linear(c * HW * HW, hidden), nn.Linear(hidden, hidden)

    def forward(s, x):
        if s.arch == "conv":
            h = F.relu(s.conv3(F.relu(s.conv2(F.relu(s.conv1(x))))))
            return F.relu(s.fc1(h.flatten(1)))
        return F.relu(s.fc2(F.relu(s.fc1(x.flatten(1)))))


class Decoder(nn.Module):
    def __init__(s, arch, c, HW, In, hidden):
        super().__init__()
        s.arch, s.c, s.HW = arch, c, HW
        if arch == "conv":
            s.fc1, s.fc2 = nn.Linear(In, 256), nn.Linear(256, 1024)
            s.deconv1, s.deconv2 = nn.ConvTranspose2d(64, 32, 3, 2, 1), nn.ConvTranspose2d(32, 32, 4, 2, 1)
            s.deconv3 = nn.ConvTranspose2d(32, c, 4, 2, 1)
        else:
            s.fc1, s.fc2, s.fc3 = nn.Linear(In, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
            s.fc4 = nn.Linear(hidden, c * HW * HW)

    def forward(s, z):
        if s.arch == "conv":
            h = F.relu(s.fc2(F.relu(s.fc1(z)))).view(-1, 64, 4, 4)
            return s.deconv3(F.relu(s.deconv2(F.relu(s.deconv1(h)))))
        h = torch.tanh(s.fc3(torch.tanh(s.fc2(torch.tanh(s.fc1(z))))))
        return s.fc4(h).view(-1, s.c, s.HW, s.HW)


def heads(i, o):
    return nn.ModuleDict({"mean": nn.Linear(i, o), "logvar": nn.Linear(i, o)})


class DSVAE(nn.Module):
    def __init__(s, arch, c, HW, T, Fd, Z, Hd, full, hidden):
        super().__init__()
        s.T, s.c, s.Fd, s.Z, s.full = T, c, Fd, Z, full
        s.encoder = Trunk(arch, c, HW, hidden)
        Fe = 256 if arch == "conv" else hidden
        s.lstm_f = nn.LSTM(Fe, Hd, bidirectional=True)
        s.q_f = heads(2 * Hd, Fd)
        if full:
            s.lstm_z = nn.LSTM(2 * Hd + Fd, Hd)
        s.q_z = heads(Hd if full else Fe, Z)
        s.prior = nn.LSTM(Z, Hd)
        s.p_z = heads(Hd, Z)
        s.decoder = Decoder(arch, c, HW, Fd + Z, hidden)

    def loss(s, x, eps, beta_f, beta_z):
        """x (B, T*c, H, W) binary; eps: eps_f (B,Fd) then eps_z (T,B,Z)."""
        B, T, c, Fd, Z = x.shape[0], s.T, s.c, s.Fd, s.Z
        h = s.encoder(x.reshape(B * T, c, x.shape[2], x.shape[3]))
        h = h.view(B, T, -1).transpose(0, 1)                      # (T,B,F)
        y1, (hn, _) = s.lstm_f(h)
        fin = torch.cat([hn[0], hn[1]], 1)                        # forward after t=T, reverse after t=1
        mf, lf = s.q_f["mean"](fin), s.q_f["logvar"](fin)
        ef, ez = eps[:B * Fd].view(B, Fd), eps[B * Fd:].view(T, B, Z)
        f = mf + torch.exp(lf / 2) * ef
        if s.full:
            g, _ = s.lstm_z(torch.cat([y1, f.unsqueeze(0).expand(T, B, Fd)], 2))
        else:
            g = h
        mz, lz = s.q_z["mean"](g), s.q_z["logvar"](g)
        z = mz + torch.exp(lz / 2) * ez
        pin = torch.cat([torch.zeros(1, B, Z, dtype=z.dtype), z[:-1]], 0)
        sp, _ = s.prior(pin)
        mp, lp = s.p_z["mean"](sp), s.p_z["logvar"](sp)
        din = torch.cat([f.unsqueeze(0).expand(T, B, Fd), z], 2).transpose(0, 1).reshape(B * T, Fd + Z)
        logits = s.decoder(din).reshape(x.shape)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1).mean()
        klf = (0.5 * (mf ** 2 + lf.exp() - lf - 1).sum(1)).mean()
        klz = (0.5 * (lp - lz + (lz.exp() + (mz - mp) ** 2) / lp.exp() - 1)).sum((0, 2)).mean()
        return recon + beta_f * klf + beta_z * klz, [recon, klf, klz]


def case(T, name, arch, c, HW, Tn, B, Fd, Z, Hd, full, hidden, lr, beta_f, beta_z, steps=3):
    model = DSVAE(arch, c, HW, Tn, Fd, Z, Hd, full, hidden)
    set_params(model)
    model = model.double()
    x = (rng.uniform(0, 1, (steps, B, Tn * c, HW, HW)) > 0.7).astype(np.uint8)
    eps = rng.standard_normal((steps, B * Fd + Tn * B * Z)).astype(np.float32)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    terms = []
    for st in range(steps):
        opt.zero_grad()
        loss, parts = model.loss(torch.tensor(x[st], dtype=torch.float64), torch.tensor(eps[st], dtype=torch.float64),
                                 beta_f, beta_z)
        loss.backward()
        terms.append([loss.item()] + [p.item() for p in parts])
        if st == 0:
            for gi, (pn, p) in enumerate(model.named_parameters()):
                g = f32(p.grad).flatten()
                pick = np.arange(g.size, dtype=np.int64) if g.size <= 4096 else \
                    (np.arange(4096, dtype=np.int64) * 2654435761 + 7 * gi) % g.size
                T[name + ".grad." + pn + ".idx"] = pick
                T[name + ".grad." + pn + ".val"] = g[pick]
        opt.step()
    T[name + ".x"] = x
    T[name + ".eps"] = eps
    T[name + ".terms"] = np.array(terms, np.float64)
    cfg = {"model": "dsvae", "arch": arch, "likelihood": "bernoulli", "C": Tn * c, "H": HW, "W": HW, "T": Tn,
           "batch": B, "latents": Z, "hidden": hidden, "lr": lr, "f_dim": Fd, "rnn_hidden": Hd,
           "beta_f": beta_f, "beta_z": beta_z, "variant": "full" if full else "factorised"}
    return cfg, list(model.state_dict().keys())


def main():
    T, meta = {}, {"generator": "tests/ref/make_dsvae_ref.py", "version": VERSION, "torch": torch.__version__,
                   "term_names": json.dumps(["loss", "recon", "kl_f", "kl_z"]), "steps": 3}
    cases = {"conv28": dict(arch="conv", c=2, HW=28, Tn=3, B=2, Fd=3, Z=2, Hd=5, full=True, hidden=16, lr=1e-3,
                            beta_f=1.5, beta_z=2.0),
             "mlp6": dict(arch="mlp", c=1, HW=6, Tn=4, B=3, Fd=2, Z=3, Hd=4, full=False, hidden=16, lr=1e-3,
                          beta_f=0.5, beta_z=3.0)}
    for name, kw in cases.items():
        cfg, order = case(T, name, **kw)
        meta[name + ".config"] = json.dumps(cfg)
        meta[name + ".param_order"] = json.dumps(order)
    meta["cases"] = json.dumps(list(cases))
    path = os.path.join(OUT, "dsvae_ref.safetensors")
    write_st(path, T, meta)
    print("wrote", path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
