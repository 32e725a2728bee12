#!/usr/bin/python3
"""torch_infer.py: PyTorch's inference speed on the same conv beta-VAE (the module of
tests/ref/make_nn_ref.py), the reference for bench_infer: encoder throughput under
torch.no_grad() (posterior means, batches of ENC_BATCH) and the latency of decoding one code
(median and p90 of 2000 calls). Same output line as bench_infer.
usage: torch_infer.py THREADS [ENC_BATCH]"""
import json, os, sys, time
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
from make_nn_ref import VAE  # noqa: E402

threads = int(sys.argv[1])
B = int(sys.argv[2]) if len(sys.argv) > 2 else 256
torch.set_num_threads(threads)
vae = VAE("conv", 1, 10, 1200).eval()
x = torch.tensor((np.random.default_rng(1).uniform(0, 1, (B, 1, 64, 64)) < 0.1).astype(np.float32))
with torch.no_grad():
    for _ in range(2):
        vae.encoder(x)
    t0 = time.perf_counter()
    n = 0
    while True:
        mu, _ = vae.encoder(x)
        n += B
        t = time.perf_counter() - t0
        if t >= 2.0:
            break
    z = mu[:1].clone()
    for _ in range(20):
        torch.sigmoid(vae.decoder(z))
    lat = []
    for i in range(2000):
        zi = mu[i % B:i % B + 1]
        a = time.perf_counter()
        torch.sigmoid(vae.decoder(zi))
        lat.append(time.perf_counter() - a)
lat.sort()
print(json.dumps({"impl": "torch", "threads": threads, "enc_batch": B, "encode_images_per_s": round(n / t),
                  "decode_ms_median": round(lat[len(lat) // 2] * 1e3, 4),
                  "decode_ms_p90": round(lat[len(lat) * 9 // 10] * 1e3, 4)}))
