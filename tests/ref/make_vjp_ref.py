#!/usr/bin/python3
"""make_vjp_ref.py: PyTorch reference values for the decoder's vector-Jacobian product
(knobs_model_decode_vjp, the gradient knobs design ascends; tests/test_edit.c).

For a conv decoder with 3 channels (the channel-major layout conversion is on the path) and an
mlp decoder with 1 channel, both Bernoulli (decode = sigmoid(decoder(z))), with parameters set
from the integer hash of make_models_ref.set_params: codes z, a cotangent g, and in float64
  dz      = d sum(g * sigmoid(decoder(z))) / dz
  dz_area = d sum_i mean(sigmoid(decoder(z_i))) / dz     (the `area` property's gradient)
Run: /usr/bin/python3 tests/ref/make_vjp_ref.py   (from the repo root)
"""
import json, os, sys
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_nn_ref import write_st  # noqa: E402
from make_models_ref import VAE, set_params  # noqa: E402

OUT = os.path.dirname(os.path.abspath(__file__))
torch.set_num_threads(1)
rng = np.random.default_rng(9876)


def case(arch, C, HW, Z, H, n):
    vae = VAE(arch, C, HW, Z, H)
    set_params(vae)
    vae = vae.double()
    z = rng.normal(0, 1, (n, Z)).astype(np.float32)
    g = rng.normal(0, 1, (n, C, HW, HW)).astype(np.float32)
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    x = torch.sigmoid(vae.decoder(zt).reshape(n, C, HW, HW))
    (x * torch.tensor(g, dtype=torch.float64)).sum().backward()
    dz = zt.grad.numpy().copy()
    zt.grad = None
    x = torch.sigmoid(vae.decoder(zt).reshape(n, C, HW, HW))
    x.flatten(1).mean(1).sum().backward()
    dza = zt.grad.numpy().copy()
    T = {"z": z, "g": g, "dz": dz.astype(np.float64), "dz_area": dza.astype(np.float64)}
    cfg = {"model": "betavae", "arch": arch, "likelihood": "bernoulli", "C": C, "H": HW, "W": HW,
           "batch": 2, "latents": Z, "hidden": H}
    meta = {"generator": "tests/ref/make_vjp_ref.py", "torch": torch.__version__, "config": json.dumps(cfg),
            "param_order": json.dumps(list(vae.state_dict().keys()))}
    name = "vjp_%s.safetensors" % arch
    write_st(os.path.join(OUT, name), T, meta)
    print("wrote", name, os.path.getsize(os.path.join(OUT, name)), "bytes")


if __name__ == "__main__":
    case("conv", 3, 64, 5, 64, 3)
    case("mlp", 1, 16, 4, 24, 3)
