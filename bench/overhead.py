"""One SGLD step of llc_core vs one plain SGD step on the same model and batch size.

Target (issue 2): ratio ≤ 1.10. Both loops draw their own shuffled minibatches from the same
tensors; rounds alternate SGD / SGLD and the median per-step time is reported, because this
2-core machine is noisy. SGLD runs one chain on the plain loop path, with and without the
periodic diagnostics (MALA, distances: one extra forward/backward every `diag_every` steps).

    .venv/bin/python -m bench.overhead
"""

import statistics
import time

import torch
from torch import nn

from llc_core import LLCTask, SGLDConfig, SGLDRun

ROUNDS = 7


def mlp(widths):
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def sgd_seconds_per_step(model, x, y, loss_fn, batch, steps):
    opt = torch.optim.SGD(model.parameters(), lr=1e-6)
    gen = torch.Generator().manual_seed(0)
    perm, pos = torch.randperm(len(x), generator=gen), 0
    start = time.perf_counter()
    for _ in range(steps):
        if pos + batch > len(x):
            perm, pos = torch.randperm(len(x), generator=gen), 0
        idx = perm[pos : pos + batch]
        pos += batch
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        float(loss.detach())  # SGLD reads every loss back too
    return (time.perf_counter() - start) / steps


def sgld_seconds_per_step(model, x, y, loss_fn, batch, steps, diag_every):
    task = LLCTask(model=model, x=x, y=y, loss_fn=loss_fn)
    cfg = SGLDConfig(epsilon=1e-7, gamma=100.0, chains=1, draws=steps, burnin=0, batch_size=batch,
                     vectorize="off", diag_every=diag_every, report_every=max(1, steps // 4))
    result = SGLDRun(task, cfg).run()
    return result.wall_seconds / steps


def measure(name, widths, n, batch, steps, loss_fn, make_y):
    torch.manual_seed(0)
    model = mlp(widths)
    x = torch.randn(n, widths[0])
    y = make_y(n)
    sgd, plain, diag = [], [], []
    for _ in range(ROUNDS):
        sgd.append(sgd_seconds_per_step(model, x, y, loss_fn, batch, steps))
        plain.append(sgld_seconds_per_step(model, x, y, loss_fn, batch, steps, diag_every=0))
        diag.append(sgld_seconds_per_step(model, x, y, loss_fn, batch, steps, diag_every=20))
    s, p, d = (statistics.median(v) for v in (sgd, plain, diag))
    params = sum(q.numel() for q in model.parameters())
    print(f"| {name} ({params:,} params), batch {batch} | {s * 1e6:,.0f} µs | {p * 1e6:,.0f} µs "
          f"| **{p / s:.2f}** | {d * 1e6:,.0f} µs | {d / s:.2f} |")


def main():
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {ROUNDS} rounds\n")
    print("| model | SGD step | SGLD step | SGLD/SGD | SGLD + diagnostics every 20 | ratio |")
    print("|---|---|---|---|---|---|")
    ce = nn.functional.cross_entropy
    measure("MLP 784-128-128-10", [784, 128, 128, 10], 8192, 512, 100, ce,
            lambda n: torch.randint(0, 10, (n,)))
    measure("MLP 4-16-16-1", [4, 16, 16, 1], 1024, 64, 1000, nn.functional.mse_loss,
            lambda n: torch.randn(n, 1))


if __name__ == "__main__":
    main()
