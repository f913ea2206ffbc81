"""The SG-MCMC step on a GPU with no host round-trip, captured in a CUDA graph where it can be.

Per step the host launches two things: one normal_() filling the noise of MAX_CHAINS rows, and
the replay of a graph holding the minibatch gather, the vmapped gradient, the update rule and
the write of the step's losses into a device-side window. The window comes back once per
progress or diagnostics record (`drain`), and divergence is judged there, on the host, step by
step in order, exactly as the CPU path judges it step by step.

Randomness. One torch.Generator per run, on the device, seeded from the run seed. Every step
draws a (MAX_CHAINS, d) block and chain c uses row c: torch's CUDA generator is Philox, counter
based, and the element → counter map of one normal_() depends only on the block's size, so chain
c's noise is a function of (seed, step, c) alone — independent of the other rows, and the first k
chains do not depend on how many run (drawing MAX_CHAINS rows is what makes that hold; it costs
~64·d normals per step, a few µs on an H100 at 118k parameters). Epoch shuffles likewise: one
(MAX_CHAINS, n) uniform block per epoch, argsort per row. The CPU path keeps its per-chain
generators instead (llc_core.update_rules.Minibatches): its numbers stay bit-identical to
earlier releases, which the documented CPU accuracy tables were measured with.
"""

from __future__ import annotations

import torch

from .limits import MAX_CHAINS


class DeviceBatches:
    """Per-chain epoch permutations of range(n) for all chains at once, all on the device."""

    def __init__(self, n: int, batch_size: int, chains: int, gen: torch.Generator, device):
        self.n, self.m, self.C, self.gen = n, batch_size, chains, gen
        self.perms = torch.empty((chains, n), dtype=torch.long, device=device)
        self.pos_t = torch.zeros((), dtype=torch.long, device=device)  # read inside the graph
        self.cols = torch.arange(batch_size, device=device)
        self.pos = n  # host copy of pos_t: known without a sync, since every chain moves alike

    def before_step(self) -> None:
        """Start a new epoch (outside the graph) when the next batch would run past n."""
        if self.pos + self.m > self.n:
            keys = torch.rand((MAX_CHAINS, self.n), generator=self.gen, device=self.perms.device)
            self.perms.copy_(keys[: self.C].argsort(dim=1))
            self.pos_t.zero_()
            self.pos = 0
        self.pos += self.m

    def indices(self) -> torch.Tensor:
        """(C, m) indices of this step's batches; advances pos_t (graph-safe: no host value)."""
        idx = self.perms.gather(1, (self.cols + self.pos_t).expand(self.C, -1))
        self.pos_t.add_(self.m)
        return idx


class DeviceStepper:
    """Runs steps of an SGLDRun's rule on its (C, d) weights with a VmapGrad, on a CUDA device."""

    def __init__(self, run, window: int):
        self.run, C = run, run.cfg.chains
        dev = run.W.device
        self.gen = torch.Generator(device=dev).manual_seed(run.cfg.seed)
        self.batches = DeviceBatches(run.task.n, run.cfg.batch_size, C, self.gen, dev)
        self.noise_block = torch.empty((MAX_CHAINS, run.W.shape[1]), device=dev, dtype=run.W.dtype)
        self.noise = self.noise_block[:C]  # a view: run.noise for the diagnostics
        self.window = torch.full((C, window), float("nan"), device=dev, dtype=torch.float64)
        self.slot_t = torch.zeros((), dtype=torch.long, device=dev)
        self.slot = 0
        self.graph = None
        self.mode = "eager"
        self.last = None  # (idx, loss, g, P) of the latest eager step, for the diagnostics

    def _body(self):
        """One step, all on the device: the function the graph captures (and eager mode runs)."""
        run = self.run
        idx = self.batches.indices()
        xb, yb = run.x[idx], run.y[idx]
        loss, g = run.grad(run.W, xb, yb, None)
        P = run.rule.precondition(g)
        self.last = (xb, yb, loss, g, P)
        return loss, g, P

    def _store(self, loss):
        self.window.scatter_(1, self.slot_t.expand(loss.shape[0], 1), loss.double().unsqueeze(1))
        self.slot_t.add_(1)

    def _captured(self):
        loss, g, P = self._body()
        self.run.rule.apply(self.run.W, g, self.noise, P)
        self._store(loss)

    def try_capture(self) -> str:
        """Capture one step in a CUDA graph (after warm-up steps on a side stream that are then
        undone), else stay eager. Returns the mode."""
        run = self.run
        saved = [t.clone() for t in self._state()]
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(2):
                    self._warm_step()
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            self._restore(saved)
            self.batches.before_step()
            with torch.cuda.graph(graph):
                self._captured()
            self.graph, self.mode = graph, "cuda-graph"
        except Exception:  # e.g. a model with host syncs or data-dependent shapes: eager it is
            torch.cuda.synchronize()
            self.graph, self.mode = None, "eager"
        self._restore(saved)
        self.batches.pos = self.batches.n  # the first real step starts a fresh epoch
        self.gen.manual_seed(run.cfg.seed)  # and the real run draws from the start of the stream
        return self.mode

    def _warm_step(self):
        self.batches.before_step()
        self._captured()

    def _state(self):
        rule = self.run.rule
        extra = [rule.square_avg] if getattr(rule, "square_avg", None) is not None else []
        return [self.run.W, self.window, self.slot_t, self.batches.pos_t, *extra]

    def _restore(self, saved):
        for t, s in zip(self._state(), saved):
            t.copy_(s)

    def step(self, diag: bool):
        """One step. With diag, eager (the diagnostics need the step's inputs); returns
        (W_old, U_old, drift_old, P, xb, yb) for them, else None."""
        run = self.run
        self.batches.before_step()
        self.noise_block.normal_(generator=self.gen)
        self.slot += 1
        if self.graph is not None and not diag:
            self.graph.replay()
            return None
        loss, g, P = self._body()
        xb, yb = self.last[:2]
        before = None
        if diag:
            before = (run.W.clone(), run._potential(loss, run.W), run.rule.grad_potential(run.W, g), P, xb, yb)
        run.rule.apply(run.W, g, self.noise, P)
        self._store(loss)
        return before

    def drain(self):
        """The losses of the steps since the last drain, (C, k) numpy (one device → host copy)."""
        k, self.slot = self.slot, 0
        out = self.window[:, :k].cpu().numpy()
        self.slot_t.zero_()
        return out
