"""Forward + backward of a batched neural ODE (MLP 2-64-64-2 with tanh, batch 512, t in
[0, 1]) in torchdiffeq: rk4 with 20 steps and dopri5 at rtol = atol = 1e-5 (backprop
through the solver). The baseline for `cargo bench --bench neural_ode`.
Prints `rk4_ms=`, `dopri5_ms=`, `dopri5_nfe=` (forward evaluations)."""
import sys
import time

import torch
from torch import nn
from torchdiffeq import odeint

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
torch.manual_seed(0)


class Field(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2))
        self.nfe = 0

    def forward(self, t, y):
        self.nfe += 1
        return self.net(y)


f = Field()
y0 = torch.randn(512, 2)
ts = torch.tensor([0.0, 1.0])


def run(**kw):
    times = []
    for i in range(8):
        f.nfe = 0
        f.zero_grad()
        t0 = time.perf_counter()
        y1 = odeint(f, y0, ts, **kw)[-1]
        nfe = f.nfe
        y1.pow(2).sum().backward()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2] * 1000, nfe


rk4_ms, _ = run(method="rk4", options={"step_size": 0.05})
dp_ms, dp_nfe = run(method="dopri5", rtol=1e-5, atol=1e-5)
print(f"rk4_ms={rk4_ms:.3f}")
print(f"dopri5_ms={dp_ms:.3f}")
print(f"dopri5_nfe={dp_nfe}")
