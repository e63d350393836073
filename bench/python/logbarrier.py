"""LogBarrier l2 in PyTorch with the same algorithm and iteration counts as flowline's
(src/robust/start.rs, logbarrier.rs, attack.rs): the baseline for
`cargo bench --bench workloads -- logbarrier` (through workloads.py). Attacks the first 100 correctly classified MNIST test
images with the trained flowline convnet (weights read from its .safetensors file) and
prints the time per image as `torch_ms_per_image=<value>` and the median l2 distance.

Usage: python logbarrier.py MODEL.safetensors MNIST_DIR OUTER INNER [THREADS]
"""
import gzip
import json
import struct
import sys
import time

import numpy as np
import torch
from torch import nn


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    types = {"F32": np.float32, "F64": np.float64}
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        arr = np.frombuffer(raw[8 + n + a : 8 + n + b], dtype=types[meta["dtype"]]).reshape(meta["shape"])
        out[name] = torch.from_numpy(arr.astype(np.float32))
    return out


def convnet(w):
    class Normalize(nn.Module):
        def forward(self, x):
            return (x - 0.1307) / 0.3081

    layers = {1: nn.Conv2d(1, 16, 3, padding=1), 4: nn.Conv2d(16, 32, 3, padding=1),
              8: nn.Linear(32 * 7 * 7, 128), 11: nn.Linear(128, 10)}
    for i, layer in layers.items():
        layer.weight.data.copy_(w[f"layers.{i}.weight"])
        layer.bias.data.copy_(w[f"layers.{i}.bias"])
    model = nn.Sequential(Normalize(), layers[1], nn.MaxPool2d(2), nn.ReLU(), layers[4], nn.MaxPool2d(2),
                          nn.ReLU(), nn.Flatten(), layers[8], nn.ReLU(), nn.Dropout(0.25), layers[11])
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def idx(path):
    raw = gzip.open(path, "rb").read()
    dims = raw[3]
    shape = struct.unpack(">" + "I" * dims, raw[4 : 4 + 4 * dims])
    return np.frombuffer(raw[4 + 4 * dims :], dtype=np.uint8).reshape(shape)


def margin(logits, y):
    """max_{j != y} s_j - s_y on softmax probabilities (positive: misclassified)."""
    p = logits.softmax(-1)
    own = p.gather(1, y[:, None])[:, 0]
    others = p.masked_fill(nn.functional.one_hot(y, p.shape[1]).bool(), -1.0)
    return others.max(1).values - own


def adversarial(model, z, y):
    with torch.no_grad():
        return margin(model(z), y) > 0


def pull(model, x, y, far, steps):
    """Closest point to x on [x, far] that is still adversarial (bisection)."""
    lo = torch.zeros(len(x), device=x.device)
    hi = torch.ones(len(x), device=x.device)
    shape = (-1,) + (1,) * (x.dim() - 1)
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        ok = adversarial(model, x + mid.view(shape) * (far - x), y)
        hi = torch.where(ok, mid, hi)
        lo = torch.where(ok, lo, mid)
    return x + hi.view(shape) * (far - x)


def start(model, x, y):
    far = x.clone()
    found = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    for k in range(24):
        if found.all():
            break
        trial = (x + torch.randn_like(x) * 0.01 * 2**k).clamp(0, 1)
        ok = adversarial(model, trial, y) & ~found
        far[ok] = trial[ok]
        found |= ok
    for shift in range(1, min(len(x), 16)):
        if found.all():
            break
        trial = torch.roll(x, -shift, 0)
        ok = adversarial(model, trial, y) & ~found
        far[ok] = trial[ok]
        found |= ok
    return pull(model, x, y, far, 8), found


def logbarrier(model, x, y, outer, inner, lam0=0.1, beta=0.75, gamma=0.5, dt=0.01, tol=1e-6):
    z, found = start(model, x, y)
    best = z.clone()
    best_d = (z - x).flatten(1).norm(dim=1)
    for k in range(outer):
        lam = lam0 * beta**k
        active = found.clone()
        for _ in range(inner):
            idx = active.nonzero()[:, 0]
            if len(idx) == 0:
                break
            za = z[idx].clone().requires_grad_(True)
            c = margin(model(za), y[idx])
            (g,) = torch.autograd.grad((-lam * torch.log(c.clamp_min(1e-30))).sum(), za)
            with torch.no_grad():
                old = z[idx]
                cand = (old - dt * ((old - x[idx]) + g)).clamp(0, 1)
                pending = torch.ones(len(idx), dtype=torch.bool, device=x.device)
                for attempt in range(60):
                    bad = ~adversarial(model, cand, y[idx]) & pending
                    if not bad.any():
                        break
                    if attempt == 59:
                        cand[bad] = old[bad]
                    else:
                        cand[bad] = (1 - gamma) * cand[bad] + gamma * old[bad]
                    pending = bad
                moved = (cand - old).flatten(1).norm(dim=1)
                z[idx] = cand
                d = (cand - x[idx]).flatten(1).norm(dim=1)
                better = d <= best_d[idx]
                best[idx[better]] = cand[better]
                best_d[idx[better]] = d[better]
                active[idx[moved <= tol]] = False
    return pull(model, x, y, best, 20), found


def main():
    model_path, mnist, outer, inner = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(int(sys.argv[5]) if len(sys.argv) > 5 else 2)
    torch.manual_seed(0)
    model = convnet(read_safetensors(model_path))
    images = torch.from_numpy(idx(f"{mnist}/t10k-images-idx3-ubyte.gz")[:400].astype(np.float32) / 255.0)
    labels = torch.from_numpy(idx(f"{mnist}/t10k-labels-idx1-ubyte.gz")[:400].astype(np.int64))
    x = images[:, None]
    with torch.no_grad():
        right = (model(x).argmax(1) == labels).nonzero()[:, 0][:100]
    x, y = x[right], labels[right]
    t0 = time.perf_counter()
    adv, found = logbarrier(model, x, y, outer, inner)
    secs = time.perf_counter() - t0
    ok = adversarial(model, adv, y) & found
    d = (adv - x).flatten(1).norm(dim=1)[ok]
    print(f"torch_ms_per_image={secs / len(x) * 1000:.3f}")
    print(f"pytorch logbarrier l2 ({outer} x {inner}): median l2 {d.sort().values[len(d) // 2].item():.4f}, broken {int(ok.sum())}/{len(x)}")
    print(f"torch={torch.__version__} threads={torch.get_num_threads()}")


if __name__ == "__main__":
    main()
