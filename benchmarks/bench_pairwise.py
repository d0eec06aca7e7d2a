"""Benchmark TripletLoss, CosineEmbeddingLoss, SDMLLoss and PoissonNLLLoss
against PyTorch (CPU, autograd).

    python benchmarks/bench_pairwise.py [--shape 4096 256] [--sdml-shape 1024 256]
        [--poisson-shape 4096 1024] [--threads N] [--repeats 15] [--dtype float32]
        [--sdml-repeats 5] [--skip-broadcast] [--sdml-unit-norm] [--only NAME ...]

Every contender for one loss runs in this one process, interleaved round by
round (a noisy neighbour hits all of them alike); the table shows medians
in milliseconds and the ratio torch / gluonloss (> 1: gluonloss is faster).
The PyTorch peers, forward + backward with ``out.backward(ones)``:

* TripletLoss: the same formula, relu(sum((q - p)^2 - (n - p)^2, 1) + margin),
  gradients for all three inputs (``F.triplet_margin_loss`` uses unsquared
  distances, so it is not the same loss);
* CosineEmbeddingLoss: ``F.cosine_embedding_loss(reduction='none')``,
  gradients for both inputs;
* SDMLLoss: MXNet's formula -- distances by broadcasting, an (N, N, D)
  temporary -- and, as a second peer, the same loss with the distances
  expanded as |a|^2 + |b|^2 - 2 a.b (matrix products, BLAS);
* PoissonNLLLoss: ``F.poisson_nll_loss(reduction='none').mean(1)`` (the
  mean gives the same per-sample output as gluonloss).
"""
import argparse
import platform

import numpy as np
from bench_elementwise import time_interleaved, torch_pair, use_threads  # shared by every bench

import gluonloss as gl

try:
    import torch
    import torch.nn.functional as F
except ImportError:      # optional peer
    torch = None


def triplet_torch(p, q, n, margin=1.0):
    return torch.relu(((q - p) ** 2 - (n - p) ** 2).sum(1) + margin)


def cosine_torch(x, y, label):
    return F.cosine_embedding_loss(x, y, label, reduction="none")


def _sdml_torch(dist, sp):
    n = dist.shape[0]
    lp = torch.log_softmax(-dist, dim=1)
    y = torch.full((n, n), sp / (n - 1), dtype=dist.dtype)
    y.fill_diagonal_(1 - sp)
    return (y * (torch.log(y + 1e-12) - lp)).mean(1)


def sdml_torch_broadcast(x1, x2, sp=0.3):
    return _sdml_torch(((x1[:, None, :] - x2[None, :, :]) ** 2).sum(2), sp)


def sdml_torch_matmul(x1, x2, sp=0.3):
    dist = (x1 * x1).sum(1)[:, None] + (x2 * x2).sum(1)[None, :] - 2 * x1 @ x2.T
    return _sdml_torch(dist.clamp(min=0), sp)


def poisson_torch(p, t):
    return F.poisson_nll_loss(p, t, log_input=True, reduction="none").mean(1)


def benchmarks(args, rng, dtype):
    """(name, shape, gluonloss loss, differentiable inputs, other inputs, torch fns, repeats)."""
    shape, sdml_shape, poisson_shape = (tuple(args.shape), tuple(args.sdml_shape),
                                        tuple(args.poisson_shape))
    p, q, n = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    x, y = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    label = rng.choice([-1, 1], shape[0])
    a = rng.standard_normal(sdml_shape)
    b = a + 0.7 * rng.standard_normal(sdml_shape)
    if args.sdml_unit_norm:
        # Embeddings as many models emit them: the distances lie in [0, 4], so
        # no exp underflows to 0 (standard-normal rows of 256 dimensions give
        # distances near 500, and nearly every exp does).
        a, b = (v / np.linalg.norm(v, axis=1, keepdims=True) for v in (a, b))
    a, b = a.astype(dtype), b.astype(dtype)
    logits = rng.standard_normal(poisson_shape).astype(dtype)
    counts = rng.poisson(1.5, poisson_shape).astype(dtype)
    return [
        ("TripletLoss", shape, gl.TripletLoss(), [p, q, n], [],
         {"torch (same formula)": triplet_torch}, args.repeats),
        ("CosineEmbeddingLoss", shape, gl.CosineEmbeddingLoss(), [x, y], [label.astype(dtype)],
         {"torch F.cosine_embedding_loss": cosine_torch}, args.repeats),
        ("SDMLLoss", sdml_shape, gl.SDMLLoss(), [a, b], [],
         {**({} if args.skip_broadcast else
             {"torch (MXNet's broadcast formula)": sdml_torch_broadcast}),
          "torch (matmul-expanded distances)": sdml_torch_matmul}, args.sdml_repeats),
        ("PoissonNLLLoss", poisson_shape, gl.PoissonNLLLoss(), [logits], [counts],
         {"torch F.poisson_nll_loss": poisson_torch}, args.repeats),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=2, default=[4096, 256],
                        help="TripletLoss and CosineEmbeddingLoss batch (N, D)")
    parser.add_argument("--sdml-shape", type=int, nargs=2, default=[1024, 256])
    parser.add_argument("--poisson-shape", type=int, nargs=2, default=[4096, 1024])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--sdml-repeats", type=int, default=5,
                        help="rounds for SDMLLoss (its broadcast peer takes seconds)")
    parser.add_argument("--skip-broadcast", action="store_true",
                        help="leave out SDMLLoss's broadcast peer, for more rounds")
    parser.add_argument("--sdml-unit-norm", action="store_true",
                        help="SDMLLoss on rows scaled to unit length")
    parser.add_argument("--only", nargs="*", help="loss names to run")
    parser.add_argument("--threads", type=int, help="threads for gluonloss and PyTorch")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)
    threads = use_threads(args.threads)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {threads} thread(s); "
          f"numpy {np.__version__}, torch {torch.__version__ if torch else 'absent'}")
    print(f"{dtype}, medians of interleaved rounds, milliseconds; ratio = peer / gluonloss\n")
    print("| loss | shape | gluonloss fwd | gluonloss fwd+grad | peer | peer fwd | "
          "peer fwd+grad | ratio fwd | ratio fwd+grad |")
    print("|---|---|---:|---:|---|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for name, shape, loss, diff, other, peers, repeats in benchmarks(args, rng, dtype):
        if args.only and name not in args.only:
            continue
        call_args = diff + other
        calls = {"gl fwd": lambda: loss(*call_args),
                 "gl f+g": lambda: loss.value_and_gradient(*call_args)}
        if torch is not None:
            for peer, fn in peers.items():
                calls[peer + " fwd"], calls[peer + " f+g"] = torch_pair(fn, diff, other,
                                                                        shape[0])
        t = {k: v * 1e3 for k, v in time_interleaved(calls, repeats).items()}
        shape_text = "x".join(map(str, shape))
        rows = peers if torch is not None else {"(torch absent)": None}
        for peer in rows:
            nan = float("nan")
            pf, pg = t.get(peer + " fwd", nan), t.get(peer + " f+g", nan)
            print(f"| {name} | {shape_text} | {t['gl fwd']:.2f} | {t['gl f+g']:.2f} | {peer} | "
                  f"{pf:.2f} | {pg:.2f} | {pf / t['gl fwd']:.2f} | {pg / t['gl f+g']:.2f} |")


if __name__ == "__main__":
    main()
