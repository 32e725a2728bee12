#!/usr/bin/python3
"""make_nn_ref.py: PyTorch reference values for tests/test_ref.c.

Writes, with Debian's python3-torch (1.13) and numpy:
  nn_layers.safetensors  every layer's forward output and the gradients of L = sum(w * y)
                         w.r.t. input, weights and bias; losses; batch norm; 10 Adam steps.
  vae_<model>_<arch>.safetensors  the models betavae / annealedvae on the conv and (narrow)
                         mlp architectures: the loss terms and every parameter gradient of the
                         first step, the loss terms of 10 Adam steps, and sampled parameter
                         entries after them.
Parameters of the model files are not stored: both sides compute them with param_formula()
(an integer hash), so the files stay small. Inputs, noise and outputs are stored.
Run: make ref   (or /usr/bin/python3 tests/ref/make_nn_ref.py from the repo root)
"""
import json, os, struct, sys
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

VERSION = "1"
OUT = os.path.dirname(os.path.abspath(__file__))
torch.set_num_threads(1)
torch.manual_seed(0)
rng = np.random.default_rng(1234)


def write_st(path, tensors, meta):
    """A minimal safetensors writer (the format: u64 header length, JSON header, raw data)."""
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        dt = {np.float32: "F32", np.int64: "I64", np.uint8: "U8", np.float64: "F64"}[arr.dtype.type]
        b = arr.tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {k: str(v) for k, v in meta.items()}
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def meta():
    return {"generator": "tests/ref/make_nn_ref.py", "version": VERSION, "torch": torch.__version__}


def f32(t):
    return t.detach().numpy().astype(np.float32)


def param_formula(n, seed, bound):
    """u_i = hash(i, seed) / 2^32 * 2 - 1 scaled by bound; the same formula is in test_ref.c."""
    i = np.arange(n, dtype=np.uint64)
    h = (i * np.uint64(2654435761) + np.uint64(seed) * np.uint64(40503) + np.uint64(12345)) % np.uint64(1 << 32)
    h = (h ^ (h >> np.uint64(15))) * np.uint64(2246822519) % np.uint64(1 << 32)
    h = h ^ (h >> np.uint64(13))
    u = h.astype(np.float64) / 4294967296.0 * 2.0 - 1.0
    return (u * bound).astype(np.float32)


# ---------------------------------------------------------------------------------------------
def layers():
    T = {}

    def rnd(*shape, lo=-1.0, hi=1.0):
        return torch.tensor(rng.uniform(lo, hi, size=shape).astype(np.float32), requires_grad=True)

    def record(prefix, y, inputs):
        w = torch.tensor(rng.uniform(-1, 1, size=y.shape).astype(np.float32))
        (y * w).sum().backward()
        T[prefix + ".y"] = f32(y)
        T[prefix + ".w"] = f32(w)
        for k, t in inputs.items():
            T[prefix + "." + k] = f32(t)
            if t.grad is not None:
                T[prefix + ".d" + k] = f32(t.grad)

    x, W, b = rnd(5, 7), rnd(4, 7), rnd(4)
    record("linear", F.linear(x, W, b), {"x": x, "W": W, "b": b})

    convs = [  # (name, transposed, B, C, H, W, K, k, stride, pad)
        ("conv_a", 0, 2, 3, 8, 8, 4, 4, 2, 1), ("conv_b", 0, 2, 4, 6, 6, 3, 2, 2, 0),
        ("conv_c", 0, 3, 2, 7, 5, 2, 3, 1, 1),
        ("convt_a", 1, 2, 4, 4, 4, 3, 4, 2, 1), ("convt_b", 1, 2, 3, 3, 5, 2, 3, 1, 0),
        ("convt_c", 1, 2, 2, 5, 5, 1, 4, 2, 1)]
    for name, tr, B, C, H, Wd, K, k, s, p in convs:
        x = rnd(B, C, H, Wd)
        if tr:
            Wt, bt = rnd(C, K, k, k), rnd(K)
            y = F.conv_transpose2d(x, Wt, bt, stride=s, padding=p)
        else:
            Wt, bt = rnd(K, C, k, k), rnd(K)
            y = F.conv2d(x, Wt, bt, stride=s, padding=p)
        record(name, y, {"x": x, "W": Wt, "b": bt})
        T[name + ".geom"] = np.array([tr, B, C, H, Wd, K, k, s, p], dtype=np.int64)

    for name, fn in [("relu", F.relu), ("lrelu", lambda t: F.leaky_relu(t, 0.2)),
                     ("tanh", torch.tanh), ("sigmoid", torch.sigmoid)]:
        xv = rng.uniform(-4, 4, size=(6, 9)).astype(np.float32)
        xv[np.abs(xv) < 0.05] = 0.5
        x = torch.tensor(xv, requires_grad=True)
        record(name, fn(x), {"x": x})

    # batch norm, training mode, then the running statistics after the step
    for name, shape in [("bn2d", (4, 3, 5, 5)), ("bn1d", (6, 5))]:
        x = rnd(*shape, lo=-2, hi=2)
        C = shape[1]
        bn = nn.BatchNorm2d(C) if len(shape) == 4 else nn.BatchNorm1d(C)
        with torch.no_grad():
            bn.weight.copy_(torch.tensor(rng.uniform(0.5, 1.5, C).astype(np.float32)))
            bn.bias.copy_(torch.tensor(rng.uniform(-1, 1, C).astype(np.float32)))
        bn.train()
        y = bn(x)
        record(name, y, {"x": x, "gamma": bn.weight, "beta": bn.bias})
        T[name + ".running_mean"] = f32(bn.running_mean)
        T[name + ".running_var"] = f32(bn.running_var)
        bn.eval()
        T[name + ".y_eval"] = f32(bn(x))

    # losses as disentanglement_lib reduces them: batch mean of per-example sums
    logits = rnd(4, 30, lo=-6, hi=6)
    xb = torch.tensor((rng.uniform(0, 1, (4, 30)) > 0.5).astype(np.float32))
    L = F.binary_cross_entropy_with_logits(logits, xb, reduction="none").sum(1).mean()
    L.backward()
    T["bce.logits"], T["bce.x"], T["bce.loss"], T["bce.dlogits"] = f32(logits), f32(xb), np.array([L.item()], np.float32), f32(logits.grad)
    mu, lv = rnd(4, 6, lo=-2, hi=2), rnd(4, 6, lo=-3, hi=1)
    kl = (0.5 * (mu ** 2 + lv.exp() - lv - 1).sum(1)).mean()
    kl.backward()
    T["kl.mu"], T["kl.lv"], T["kl.loss"], T["kl.dmu"], T["kl.dlv"] = f32(mu), f32(lv), np.array([kl.item()], np.float32), f32(mu.grad), f32(lv.grad)

    # Adam: 10 steps on a tensor with given gradients
    p = torch.tensor(rng.uniform(-1, 1, 257).astype(np.float32), requires_grad=True)
    T["adam.p0"] = f32(p)
    opt = torch.optim.Adam([p], lr=1e-2, betas=(0.9, 0.999), eps=1e-8)
    grads = rng.uniform(-1, 1, (10, 257)).astype(np.float32)
    for t in range(10):
        opt.zero_grad()
        p.grad = torch.tensor(grads[t])
        opt.step()
    T["adam.grads"], T["adam.p10"] = grads, f32(p)
    write_st(os.path.join(OUT, "nn_layers.safetensors"), T, meta())


# ---------------------------------------------------------------------------------------------
class ConvEncoder(nn.Module):
    def __init__(s, C, Z):
        super().__init__()
        s.conv1, s.conv2 = nn.Conv2d(C, 32, 4, 2, 1), nn.Conv2d(32, 32, 4, 2, 1)
        s.conv3, s.conv4 = nn.Conv2d(32, 64, 2, 2), nn.Conv2d(64, 64, 2, 2)
        s.fc1, s.fc_mu, s.fc_logvar = nn.Linear(1024, 256), nn.Linear(256, Z), nn.Linear(256, Z)

    def forward(s, x):
        h = F.relu(s.conv4(F.relu(s.conv3(F.relu(s.conv2(F.relu(s.conv1(x))))))))
        h = F.relu(s.fc1(h.flatten(1)))
        return s.fc_mu(h), s.fc_logvar(h)


class ConvDecoder(nn.Module):
    def __init__(s, C, Z):
        super().__init__()
        s.fc1, s.fc2 = nn.Linear(Z, 256), nn.Linear(256, 1024)
        s.deconv1, s.deconv2 = nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ConvTranspose2d(64, 32, 4, 2, 1)
        s.deconv3, s.deconv4 = nn.ConvTranspose2d(32, 32, 4, 2, 1), nn.ConvTranspose2d(32, C, 4, 2, 1)

    def forward(s, z):
        h = F.relu(s.fc2(F.relu(s.fc1(z)))).view(-1, 64, 4, 4)
        return s.deconv4(F.relu(s.deconv3(F.relu(s.deconv2(F.relu(s.deconv1(h)))))))


class MlpEncoder(nn.Module):
    def __init__(s, D, Z, H):
        super().__init__()
        s.fc1, s.fc2, s.fc_mu, s.fc_logvar = nn.Linear(D, H), nn.Linear(H, H), nn.Linear(H, Z), nn.Linear(H, Z)

    def forward(s, x):
        h = F.relu(s.fc2(F.relu(s.fc1(x.flatten(1)))))
        return s.fc_mu(h), s.fc_logvar(h)


class MlpDecoder(nn.Module):
    def __init__(s, D, Z, H):
        super().__init__()
        s.fc1, s.fc2, s.fc3, s.fc4 = nn.Linear(Z, H), nn.Linear(H, H), nn.Linear(H, H), nn.Linear(H, D)

    def forward(s, z):
        return s.fc4(torch.tanh(s.fc3(torch.tanh(s.fc2(torch.tanh(s.fc1(z)))))))


class VAE(nn.Module):
    def __init__(s, arch, C, Z, H=64):
        super().__init__()
        if arch == "conv":
            s.encoder, s.decoder = ConvEncoder(C, Z), ConvDecoder(C, Z)
        else:
            s.encoder, s.decoder = MlpEncoder(C * 4096, Z, H), MlpDecoder(C * 4096, Z, H)


def fan_in(name, t):
    if t.dim() >= 2:
        return t.shape[1] * int(np.prod(t.shape[2:]))
    return None


def set_params(model):
    """param_formula on every tensor in state_dict order; bound 1/sqrt(fan_in) of its layer."""
    sd = model.state_dict()
    names = list(sd.keys())
    for idx, name in enumerate(names):
        t = sd[name]
        wname = name.rsplit(".", 1)[0] + ".weight"
        fi = fan_in(wname, sd[wname])
        bound = 1.0 / np.sqrt(fi)
        sd[name].copy_(torch.tensor(param_formula(t.numel(), idx, bound).reshape(t.shape)))


def vae_case(model_name, arch):
    B, C, Z, H = 4, 1, 10, 64
    beta, gamma, cmax, citers, lr = 4.0, 100.0, 5.0, 4, 1e-3
    vae = VAE(arch, C, Z, H)
    set_params(vae)
    x = (rng.uniform(0, 1, (2, B, C, 64, 64)) > 0.7).astype(np.float32)
    eps = rng.standard_normal((10, B, Z)).astype(np.float32)
    opt = torch.optim.Adam(vae.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
    T = {"x": x.astype(np.uint8), "eps": eps}
    losses = []
    for t in range(10):
        opt.zero_grad()
        xt = torch.tensor(x[t % 2])
        mu, lv = vae.encoder(xt)
        z = mu + torch.exp(lv / 2) * torch.tensor(eps[t])
        logits = vae.decoder(z).view_as(xt)
        recon = F.binary_cross_entropy_with_logits(logits, xt, reduction="none").sum((1, 2, 3)).mean()
        kl = (0.5 * (mu ** 2 + lv.exp() - lv - 1).sum(1)).mean()
        if model_name == "betavae":
            loss = recon + beta * kl
        else:
            cap = min(cmax, cmax * t / citers)
            loss = recon + gamma * torch.abs(kl - cap)
        loss.backward()
        losses.append([loss.item(), recon.item(), kl.item()])
        if t == 0:
            # every gradient: whole tensors up to 65536 entries (betavae), else 4096 (betavae)
            # or 256 (annealedvae) sampled entries with their flat indices
            for gi, (name, p) in enumerate(vae.named_parameters()):
                g = f32(p.grad).flatten()
                cap = 65536 if model_name == "betavae" else 0
                if g.size <= cap:
                    T["grad." + name] = f32(p.grad)
                else:
                    k = min(g.size, 4096 if model_name == "betavae" else 256)
                    pick = (np.arange(k, dtype=np.int64) * 2654435761 + 7 * gi) % g.size
                    T["grad." + name + ".idx"] = pick
                    T["grad." + name + ".val"] = g[pick]
            T["mu0"], T["lv0"], T["logits0"] = f32(mu), f32(lv), f32(logits)
        opt.step()
    T["losses"] = np.array(losses, np.float64)
    # 16 sampled entries of every parameter after 10 steps
    for idx, (name, p) in enumerate(vae.state_dict().items()):
        flat = p.flatten().numpy()
        pick = (np.arange(16, dtype=np.int64) * 2654435761 + idx) % flat.size
        T["after." + name + ".idx"] = pick
        T["after." + name + ".val"] = flat[pick].astype(np.float32)
    cfg = {"beta": beta, "gamma": gamma, "capacity": cmax, "capacity_steps": citers, "lr": lr,
           "batch": B, "latents": Z, "hidden": H}
    m = meta()
    m["config"] = json.dumps(cfg)
    m["param_order"] = json.dumps(list(vae.state_dict().keys()))
    write_st(os.path.join(OUT, "vae_%s_%s.safetensors" % (model_name, arch)), T, m)


if __name__ == "__main__":
    layers()
    for model_name in ["betavae", "annealedvae"]:
        for arch in ["conv", "mlp"]:
            vae_case(model_name, arch)
    print("wrote", OUT)
