"""The PyTorch side of flowline's benchmark workloads (benches/workloads.rs): the same
models, batch sizes, optimizers and iteration counts, 2 threads. Prints one line:
`workload=NAME median_ms=... result=... nfe=... peak_mb=...`.

Usage: python workloads.py WORKLOAD [THREADS]
Workloads: convnet_step example_step convnet_epoch inference mlp_step node_rk4 node_dopri5
logbarrier cnf_step cnf_train cnf_rnode. Data and weights come from FLOWLINE_DATA (default ../shared/data) and
FLOWLINE_BENCH_MODEL (default runs/mnist_convnet/fit/model.safetensors).
FLOWLINE_BENCH_DEVICE=cuda runs on the GPU (every timed call ends in a read-back, which
waits for the GPU).
"""
import gzip
import os
import resource
import struct
import sys
import time

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
DEV = torch.device(os.environ.get("FLOWLINE_BENCH_DEVICE", "cpu"))
sys.path.insert(0, HERE)


def median_ms(fn, reps, warmup=3):
    times = []
    out = None
    for i in range(reps + warmup):
        t0 = time.perf_counter()
        out = fn()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2] * 1000, out


class Normalize(nn.Module):
    def forward(self, x):
        return (x - 0.1307) / 0.3081


def stdlib_convnet(width=16, classes=10):
    """`normalize |> convnet(width: 16)` of flowline's std.models, layer for layer."""
    return nn.Sequential(
        Normalize(),
        nn.Conv2d(1, width, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
        nn.Flatten(), nn.Linear(2 * width * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25),
        nn.Linear(128, classes),
    )


def example_convnet():
    """The PyTorch examples' MNIST network: conv 32 and 64 (3x3, no padding), max pool,
    dense 128."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(128, 10),
    )


def mlp():
    """The quickstart's `mlp(hidden: 64, classes: 2)`."""
    return nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))


def step_workload(model, x, y, reps):
    model, x, y = model.to(DEV), x.to(DEV), y.to(DEV)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    model.train()

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return median_ms(step, reps)


def idx(path):
    raw = gzip.open(path, "rb").read() if path.endswith(".gz") else open(path, "rb").read()
    dims = raw[3]
    shape = struct.unpack(">" + "I" * dims, raw[4 : 4 + 4 * dims])
    return np.frombuffer(raw[4 + 4 * dims :], dtype=np.uint8).reshape(shape)


def mnist_train(n):
    base = os.path.join(os.environ.get("FLOWLINE_DATA", "../shared/data"), "mnist")
    for images, labels in [("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                           ("train-images-first10k-idx3-ubyte", "train-labels-first10k-idx1-ubyte")]:
        for ext in ["", ".gz"]:
            p, q = os.path.join(base, images + ext), os.path.join(base, labels + ext)
            if os.path.exists(p) and os.path.exists(q):
                x = torch.from_numpy(idx(p)[:n].astype(np.float32) / 255.0)[:, None]
                return x, torch.from_numpy(idx(q)[:n].astype(np.int64))
    raise SystemExit(f"no MNIST training files under {base}")


def convnet_epoch():
    """One epoch of a fresh model over 10,000 MNIST images at batch 128 as a user's loop does
    it: a shuffled order, minibatches indexed from it, the loss of every step kept; then, as
    flowline's `train` stage reports it, the loss over the whole training set."""
    x, y = mnist_train(10000)
    x, y = x.to(DEV), y.to(DEV)
    loss_fn = nn.CrossEntropyLoss()

    def epoch():
        # A fresh model each time, as each flowline run trains one: the reported loss is
        # then one epoch's, comparable with flowline's.
        torch.manual_seed(0)
        model = stdlib_convnet().to(DEV)
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        model.train()
        order = torch.randperm(len(x), device=DEV)
        losses = []
        for b in range(len(x) // 128):
            i = order[b * 128 : (b + 1) * 128]
            opt.zero_grad()
            loss = loss_fn(model(x[i]), y[i])
            loss.backward()
            opt.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            total = sum(loss_fn(model(x[i : i + 1000]), y[i : i + 1000]).item() * len(x[i : i + 1000])
                        for i in range(0, len(x), 1000))
        return total / len(x)

    return median_ms(epoch, 3, warmup=0)


def inference():
    torch.manual_seed(0)
    model = stdlib_convnet().eval().to(DEV)
    x = torch.rand(10000, 1, 28, 28).to(DEV)

    def run():
        with torch.no_grad():
            return torch.cat([model(x[i : i + 1000]) for i in range(0, len(x), 1000)]).mean().item()

    return median_ms(run, 5, warmup=1)


class Field(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2))
        self.nfe = 0

    def forward(self, t, y):
        self.nfe += 1
        return self.net(y)


def neural_ode(**kw):
    from torchdiffeq import odeint

    torch.manual_seed(0)
    f = Field().to(DEV)
    y0 = torch.randn(512, 2).to(DEV)
    ts = torch.tensor([0.0, 1.0]).to(DEV)
    nfe = [0]

    def run():
        f.nfe = 0
        f.zero_grad()
        y1 = odeint(f, y0, ts, **kw)[-1]
        nfe[0] = f.nfe
        loss = y1.pow(2).sum()
        loss.backward()
        return loss.item()

    ms, out = median_ms(run, 6, warmup=2)
    return ms, out, nfe[0]


def logbarrier_workload():
    import logbarrier as lb

    model_path = os.environ.get("FLOWLINE_BENCH_MODEL", "runs/mnist_convnet/fit/model.safetensors")
    mnist = os.path.join(os.environ.get("FLOWLINE_DATA", "../shared/data"), "mnist")
    if not os.path.exists(model_path):
        raise SystemExit(f"needs {model_path} (run pipelines/mnist_convnet.flow first)")
    model = lb.convnet(lb.read_safetensors(model_path))
    images = torch.from_numpy(lb.idx(f"{mnist}/t10k-images-idx3-ubyte.gz")[:400].astype(np.float32) / 255.0)
    labels = torch.from_numpy(lb.idx(f"{mnist}/t10k-labels-idx1-ubyte.gz")[:400].astype(np.int64))
    x = images[:, None]
    with torch.no_grad():
        right = (model(x).argmax(1) == labels).nonzero()[:, 0][:100]
    x, y = x[right].to(DEV), labels[right].to(DEV)
    model = model.to(DEV)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    adv, found = lb.logbarrier(model, x, y, 10, 50)
    ms = (time.perf_counter() - t0) * 1000 / len(x)
    ok = lb.adversarial(model, adv, y) & found
    d = (adv - x).flatten(1).norm(dim=1)[ok].sort().values
    return ms, d[len(d) // 2].item()


class ConcatSquash(nn.Module):
    """FFJORD's ConcatSquashLinear: (W x + b) * sigmoid(W_g t + b_g) + W_b t."""

    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.layer = nn.Linear(dim_in, dim_out)
        self.gate = nn.Linear(1, dim_out)
        self.hyper_bias = nn.Linear(1, dim_out, bias=False)

    def forward(self, t, x):
        tt = t.view(1, 1)
        return self.layer(x) * torch.sigmoid(self.gate(tt)) + self.hyper_bias(tt)


class CnfDynamics(nn.Module):
    """[z, delta log p] with the exact trace by one autograd call per dimension (RNODE's
    code for 2-D toy data), counting evaluations."""

    def __init__(self, widths):
        super().__init__()
        self.layers = nn.ModuleList(ConcatSquash(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.nfe = 0

    def field(self, t, z):
        """f(t, z) and the Jacobian's rows by one autograd pass per dimension (graph kept)."""
        with torch.enable_grad():
            z = z.requires_grad_(True)
            h = z
            for i, layer in enumerate(self.layers):
                h = layer(t, h)
                if i + 1 < len(self.layers):
                    h = torch.tanh(h)
            rows = [torch.autograd.grad(h[:, i].sum(), z, create_graph=True)[0] for i in range(z.shape[1])]
        return h, rows

    def forward(self, t, states):
        self.nfe += 1
        h, rows = self.field(t, states[0])
        div = sum(r[:, i] for i, r in enumerate(rows))
        return h, -div.view(-1, 1)


def checkerboard(n, rng):
    """FFJORD's toy checkerboard."""
    x1 = rng.random(n) * 4 - 2
    x2 = rng.random(n) - rng.integers(0, 2, n) * 2 + (np.floor(x1) % 2)
    return np.stack([x1, x2], 1).astype(np.float32) * 2


def cnf_step():
    from torchdiffeq import odeint

    torch.manual_seed(0)
    x = torch.from_numpy(checkerboard(2000, np.random.default_rng(0))).to(DEV)
    f = CnfDynamics([2, 64, 64, 64, 2]).to(DEV)
    opt = torch.optim.Adam(f.parameters(), lr=1e-3, weight_decay=1e-5)
    ts = torch.tensor([0.0, 0.5]).to(DEV)
    state = {"k": 0, "nfe": 0}

    def run():
        k = state["k"]
        state["k"] += 1
        batch = x[(k * 100) % 1900 : (k * 100) % 1900 + 100]
        f.nfe = 0
        opt.zero_grad()
        z, delta = odeint(f, (batch, torch.zeros(100, 1, device=DEV)), ts, method="dopri5", rtol=1e-5, atol=1e-5)
        state["nfe"] = f.nfe
        z, delta = z[-1], delta[-1]
        logpz = -0.5 * z.pow(2).sum(1, keepdim=True) - np.log(2 * np.pi)
        loss = -(logpz - delta).mean()
        loss.backward()
        opt.step()
        return loss.item()

    ms, out = median_ms(run, 20, warmup=3)
    return ms, out, state["nfe"]


class RegularizedDynamics(CnfDynamics):
    """[z, delta log p, kinetic, Jacobian Frobenius] (RNODE), the exact trace and |J|_F^2
    from the same autograd rows; counts forward evaluations, and backward ones by a hook
    on each evaluation's output (the evaluations backprop differentiates)."""

    def __init__(self, widths):
        super().__init__(widths)
        self.nfe_backward = 0

    def count(self, grad):
        self.nfe_backward += 1
        return grad

    def forward(self, t, states):
        self.nfe += 1
        h, rows = self.field(t, states[0])
        div = sum(r[:, i] for i, r in enumerate(rows))
        frob = sum(r.pow(2).sum(1) for r in rows) / h.shape[1]
        kinetic = 0.5 * h.pow(2).mean(1)
        if h.requires_grad:
            h.register_hook(self.count)
        return h, -div.view(-1, 1), kinetic.view(-1, 1), frob.view(-1, 1)


def cnf_train(lam, iters=100):
    """`iters` training iterations of the RNODE checkerboard CNF from initialisation,
    plain (lam = 0) or with kinetic + Jacobian penalties lam: milliseconds per iteration,
    the batch NLL over the last fifth, forward/backward NFE per iteration. The penalties'
    states are left out of error control, as flowline does and as the issue asks."""
    from torchdiffeq import odeint

    torch.manual_seed(0)
    x = torch.from_numpy(checkerboard(20000, np.random.default_rng(0))).to(DEV)
    f = RegularizedDynamics([2, 64, 64, 64, 2]).to(DEV)
    opt = torch.optim.Adam(f.parameters(), lr=1e-3, weight_decay=1e-5)
    ts = torch.tensor([0.0, 0.5]).to(DEV)
    gen = torch.Generator().manual_seed(0)
    n = 100
    # torchdiffeq's mixed norm over a tuple (the largest RMS of its parts), over z and
    # delta only.
    def norm(parts):
        return torch.max(parts[0].pow(2).mean().sqrt(), parts[1].pow(2).mean().sqrt())

    nlls, fwd, bwd = [], [], []
    t0 = time.perf_counter()
    for _ in range(iters):
        batch = x[torch.randint(0, len(x), (n,), generator=gen)]
        f.nfe, f.nfe_backward = 0, 0
        opt.zero_grad()
        zero = torch.zeros(n, 1, device=DEV)
        z, delta, kin, jac = odeint(
            f, (batch, zero, zero, zero), ts, method="dopri5", rtol=1e-5, atol=1e-5, options={"norm": norm}
        )
        fwd.append(f.nfe)
        z, delta, kin, jac = z[-1], delta[-1], kin[-1], jac[-1]
        logpz = -0.5 * z.pow(2).sum(1, keepdim=True) - np.log(2 * np.pi)
        nll = -(logpz - delta).mean()
        loss = nll + lam * kin.mean() + lam * jac.mean() if lam > 0 else nll
        loss.backward()
        opt.step()
        bwd.append(f.nfe_backward)
        nlls.append(nll.item())
    ms = (time.perf_counter() - t0) * 1000 / iters
    tail = max(1, iters // 5)
    return ms, float(np.mean(nlls[-tail:])), f"{np.mean(fwd):.0f}/{np.mean(bwd):.0f}"


def main():
    name = sys.argv[1]
    torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
    torch.manual_seed(0)
    nfe = "-"
    if name == "convnet_step":
        ms, result = step_workload(stdlib_convnet(), torch.rand(128, 1, 28, 28), torch.randint(0, 10, (128,)), 20)
    elif name == "example_step":
        ms, result = step_workload(example_convnet(), torch.rand(128, 1, 28, 28), torch.randint(0, 10, (128,)), 10)
    elif name == "convnet_epoch":
        ms, result = convnet_epoch()
    elif name == "inference":
        ms, result = inference()
    elif name == "mlp_step":
        ms, result = step_workload(mlp(), torch.randn(128, 2), torch.randint(0, 2, (128,)), 200)
    elif name == "node_rk4":
        ms, result, nfe = neural_ode(method="rk4", options={"step_size": 0.05})
    elif name == "node_dopri5":
        ms, result, nfe = neural_ode(method="dopri5", rtol=1e-5, atol=1e-5)
    elif name == "cnf_step":
        ms, result, nfe = cnf_step()
    elif name == "cnf_train":
        ms, result, nfe = cnf_train(0.0)
    elif name == "cnf_rnode":
        ms, result, nfe = cnf_train(0.1)
    elif name == "logbarrier":
        ms, result = logbarrier_workload()
    else:
        raise SystemExit(f"unknown workload {name}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"workload={name} median_ms={ms:.4f} result={result:.6g} nfe={nfe} peak_mb={peak:.1f}")


if __name__ == "__main__":
    main()
