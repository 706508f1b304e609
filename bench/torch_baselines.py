#!/usr/bin/env python3
"""The two PyTorch baselines the CUDA kernels are measured against (needs a GPU).

(a) ceiling: torch.nn.functional.scaled_dot_product_attention on one dense sequence of
    one segment's length (FlashAttention inside PyTorch): the rate a fused attention
    kernel reaches on this device for that length. Two forms: 'sdpa' is one sequence
    (B=1, as the issue words it; short ones leave most of the GPU idle), 'sdpa-full' is
    as many sequences of that length as fill --full-tokens tokens, which is how the
    dilated problem runs (many segments at once) and so the fairer ceiling. Lengths: each
    segment length w and each dilated length w/r.
(b) official: the LongNet approach of microsoft/torchscale rebuilt from PyTorch ops on
    the same problem: for each pattern, gather the dilated rows of each segment (heads
    split into r groups, group g taking rows g, g+r, ...: the 'grouped' offsets), run
    SDPA per pattern (the flash kernel, which also returns the log-sum-exp), scatter
    back, and merge the patterns by their log-sum-exp.

Effective TFLOP/s use the same formula as every longnet benchmark (bench/README.md):
4 * D per allowed (query, key) pair and head forward, 2.5x that backward. Timing: CUDA
events, warm-up, then the median of --repeats. Output: a '#'-headed fixed-width table
and a CSV twin.

    python3 bench/torch_baselines.py --tokens 32768,131072 --csv torch_baselines.csv
"""

import argparse
import csv
import math
import statistics
import sys

import torch
import torch.nn.functional as F


def allowed_pairs(n, heads, patterns, causal):
    """Allowed (query, key) pairs summed over patterns and heads, grouped offsets."""
    pairs = 0
    for w, r in patterns:
        per_group = math.ceil(heads / r)
        for h in range(heads):
            off = h // per_group
            for start in range(0, n, w):
                length = min(w, n - start)
                m = (length - off + r - 1) // r if length > off else 0
                pairs += m * (m + 1) // 2 if causal else m * m
    return pairs


def time_ms(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def flash_with_lse(q, k, v, causal):
    """SDPA's flash kernel on [S, h, L, D]; returns the output and the log-sum-exp [S, h, L]."""
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention(q, k, v, 0.0, causal)[:2]
    return out, lse


def official_dilated(q, k, v, patterns, causal):
    """q, k, v: [B, N, H, D] with N a multiple of every w. Returns o [B, N, H, D]."""
    b, n, heads, d = q.shape
    outs, lses = [], []
    for w, r in patterns:
        segs = b * n // w
        qs, ks, vs = (t.reshape(segs, w, heads, d) for t in (q, k, v))
        o = torch.zeros_like(qs)
        lse = torch.full((segs, w, heads), -math.inf, device=q.device, dtype=torch.float32)
        per_group = math.ceil(heads / r)
        for g in range(r):
            hs = slice(g * per_group, min((g + 1) * per_group, heads))
            if hs.start >= heads:
                break
            gather = lambda t: t[:, g::r, hs].transpose(1, 2).contiguous()  # [S, h, w/r, D]
            out, l = flash_with_lse(gather(qs), gather(ks), gather(vs), causal)
            o[:, g::r, hs] = out.transpose(1, 2)
            lse[:, g::r, hs] = l.transpose(1, 2)
        outs.append(o.reshape(b, n, heads, d))
        lses.append(lse.reshape(b, n, heads))
    total = torch.logsumexp(torch.stack(lses), dim=0)
    merged = sum(o * torch.exp(l - total).unsqueeze(-1).to(o.dtype) for o, l in zip(outs, lses))
    return merged


def report_oom(name, n, direction):
    """The official approach keeps every pattern's gathered copies for autograd; at 1M
    tokens that can exceed the card. Say so in the table instead of dying."""
    print(f"  {name:>9} {n:>9} {direction:>4} {'OOM':>11} {'-':>9}", flush=True)
    torch.cuda.empty_cache()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", default="32768,131072,524288,1048576")
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--segments", default="2048,4096,8192,16384,32768")
    parser.add_argument("--rates", default="1,2,4,6,12")
    parser.add_argument("--non-causal", action="store_true")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16"])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--full-tokens", type=int, default=131072,
                        help="tokens per 'sdpa-full' run (sequences of one length, batched)")
    parser.add_argument("--csv", default="torch_baselines.csv")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("torch_baselines: no CUDA device; these baselines only make sense on a GPU")

    dtype = getattr(torch, args.dtype)
    causal = not args.non_causal
    segments = [int(x) for x in args.segments.split(",")]
    rates = [int(x) for x in args.rates.split(",")]
    patterns = list(zip(segments, rates))
    heads, d = args.heads, args.head_dim
    rows = []
    device = torch.cuda.get_device_name()
    print(f"# torch baselines on {device}, torch {torch.__version__}, {args.dtype}, "
          f"H={heads} D={d} {'causal' if causal else 'non-causal'}, median of {args.repeats}")

    print(f"# {'baseline':>9} {'N':>9} {'dir':>4} {'median_ms':>11} {'TFLOP/s':>9}  "
          "(sdpa rows: N is the sequence length; sdpa-full runs B = full-tokens / N of them)")

    def report(name, n, direction, ms, flops):
        tflops = flops / (ms * 1e9)
        print(f"  {name:>9} {n:>9} {direction:>4} {ms:>11.3f} {tflops:>9.1f}", flush=True)
        rows.append([device, args.dtype, name, n, heads, d, int(causal), direction, ms, tflops])

    # (a) dense SDPA on one segment's length: each w and each dilated length w / r.
    lengths = sorted(set(segments) | {w // r for w, r in patterns})
    for name, batch_of in (("sdpa", lambda w: 1),
                           ("sdpa-full", lambda w: max(1, args.full_tokens // w))):
        for w in lengths:
            batch = batch_of(w)
            q, k, v = (torch.randn(batch, heads, w, d, device="cuda", dtype=dtype,
                                   requires_grad=True) for _ in range(3))
            flops = 4.0 * d * heads * batch * (w * (w + 1) // 2 if causal else w * w)
            sdpa = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            grad = torch.randn_like(sdpa())
            with torch.no_grad():
                fwd_ms = time_ms(sdpa, args.warmup, args.repeats)
            both_ms = time_ms(lambda: torch.autograd.grad(sdpa(), (q, k, v), grad),
                              args.warmup, args.repeats)
            report(name, w, "fwd", fwd_ms, flops)
            report(name, w, "bwd", both_ms - fwd_ms, 2.5 * flops)
            del q, k, v, grad

    # (b) the official approach on the whole problem.
    for n in (int(x) for x in args.tokens.split(",")):
        q, k, v = (torch.randn(1, n, heads, d, device="cuda", dtype=dtype, requires_grad=True)
                   for _ in range(3))
        flops = 4.0 * d * allowed_pairs(n, heads, patterns, causal)
        forward = lambda: official_dilated(q, k, v, patterns, causal)
        grad = torch.randn_like(q)
        try:
            with torch.no_grad():  # timing the forward alone: no graph kept
                fwd_ms = time_ms(forward, args.warmup, args.repeats)
            report("official", n, "fwd", fwd_ms, flops)
        except torch.OutOfMemoryError:
            report_oom("official", n, "fwd")
            fwd_ms = None
        if fwd_ms is not None:
            try:
                both_ms = time_ms(lambda: torch.autograd.grad(forward(), (q, k, v), grad),
                                  args.warmup, args.repeats)
                report("official", n, "bwd", both_ms - fwd_ms, 2.5 * flops)
            except torch.OutOfMemoryError:
                report_oom("official", n, "bwd")
        del q, k, v, grad
        torch.cuda.empty_cache()

    with open(args.csv, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["device", "dtype", "baseline", "N", "H", "D", "causal", "direction",
                         "median_ms", "tflops"])
        writer.writerows(rows)
    print(f"# wrote {args.csv}")


if __name__ == "__main__":
    main()
