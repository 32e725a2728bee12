#!/usr/bin/python3
"""torch_load.py: model.safetensors is exactly the PyTorch module's state_dict.

Usage: torch_load.py MODEL.safetensors X.npy CODES.npy
Builds the equivalent PyTorch VAE (tests/ref/make_nn_ref.py) from the checkpoint's config,
loads the file with load_state_dict(strict=True), encodes X (N,C,H,W) float32 and compares the
posterior means with CODES (knobs encode of the same observations). Prints "strict load ok".
Needs Debian's python3-torch and python3-numpy (not the safetensors package: the file is read
here with the format's own rule, a u64 header length, a JSON header, raw little-endian data).
"""
import json, os, struct, sys
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ref"))
from make_nn_ref import VAE  # noqa: E402

DT = {"F32": np.float32, "I64": np.int64, "F64": np.float64, "U8": np.uint8}


def load_file(path):
    """What safetensors.torch.load_file returns: a dict of tensors, and the metadata."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, t in header.items():
        a, b = t["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype=DT[t["dtype"]]).reshape(t["shape"]).copy())
    return out, meta


def main():
    path, xpath, cpath = sys.argv[1:4]
    sd, meta = load_file(path)
    cfg = json.loads(meta["config"])
    vae = VAE(cfg["arch"], cfg["C"], cfg["latents"], cfg["hidden"])
    vae.load_state_dict(sd, strict=True)  # raises on any missing or unexpected key
    x = torch.from_numpy(np.load(xpath).astype(np.float32))
    with torch.no_grad():
        mu, _ = vae.encoder(x)
    codes = np.load(cpath)
    err = float(np.max(np.abs(mu.numpy() - codes)))
    if not err < 1e-4:
        print("encoder outputs differ from knobs encode: max |diff| %.3g" % err)
        sys.exit(1)
    print("strict load ok (%d tensors, max |diff| %.2g)" % (len(sd), err))


if __name__ == "__main__":
    main()
