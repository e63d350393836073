"""One training step of the MNIST convnet (std.models `convnet`, width 16, batch 128) in
PyTorch, the baseline for `cargo bench --bench convnet_step`. Prints the median step time
in milliseconds as `torch_step_ms=<value>`.

Usage: python convnet_step.py [steps] [threads]
"""
import sys
import time

import torch
from torch import nn


def convnet(width: int = 16, classes: int = 10) -> nn.Module:
    # Same layer order as flowline's: normalize, conv, maxpool, relu, ...
    class Normalize(nn.Module):
        def forward(self, x):
            return (x - 0.1307) / 0.3081

    return nn.Sequential(
        Normalize(),
        nn.Conv2d(1, width, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
        nn.Flatten(), nn.Linear(2 * width * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25),
        nn.Linear(128, classes),
    )


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = convnet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(128, 1, 28, 28)
    y = torch.randint(0, 10, (128,))
    loss_fn = nn.CrossEntropyLoss()
    times = []
    for i in range(steps + 3):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    times.sort()
    print(f"torch_step_ms={times[len(times) // 2] * 1000:.3f}")
    print(f"torch={torch.__version__} threads={torch.get_num_threads()}")


if __name__ == "__main__":
    main()
