"""NFE of torchdiffeq's dopri5 on Van der Pol (mu = 1, y0 = (2, 0), t in [0, 10], float64,
rtol = atol = 1e-6): the figure tests/ode.rs compares flowline's count with."""
import torch
from torchdiffeq import odeint

nfe = 0


def vdp(t, y):
    global nfe
    nfe += 1
    x, p = y[0], y[1]
    return torch.stack([p, (1 - x * x) * p - x])


y0 = torch.tensor([2.0, 0.0], dtype=torch.float64)
odeint(vdp, y0, torch.tensor([0.0, 10.0], dtype=torch.float64), method="dopri5", rtol=1e-6, atol=1e-6)
print(f"torchdiffeq_nfe={nfe}")
