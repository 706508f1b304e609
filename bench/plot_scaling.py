#!/usr/bin/env python3
"""Figures from the scaling suite's CSV files (bench/README.md defines every column).

    python3 bench/plot_scaling.py RESULTS_DIR           # finds the CSVs by name there
    python3 bench/plot_scaling.py --scaling s.csv --model m.csv --out DIR

Inputs (any may be missing; the figures that need it are then skipped, and said so):
  scaling     `longnet bench scaling --csv`  (file name containing "scaling")
  model       `longnet bench model --csv`    (file name containing "model", not "validation")
  validation  `longnet bench model --validate ... --csv` (file name containing "validation")

Writes PNG files into the output directory (default: RESULTS_DIR):
  scaling_efficiency.png   efficiency against one rank, weak and strong, dilated vs dense
  scaling_tokens_per_s.png tokens/s against ranks
  latency_vs_length.png    latency of one attention call against sequence length,
                           log-log, dilated vs dense: the cost model's sweep, and beside it
                           this run's weak scaling
  bytes_per_rank.png       bytes each rank receives per call: measured against ranks, and
                           the model's against sequence length
  model_validation.png     measured against predicted time per call (when validated)
Needs matplotlib (Debian: python3-matplotlib; launch/setup.sh installs it).
"""
import argparse
import csv
import pathlib
import sys

try:
    import matplotlib
except ImportError:
    sys.exit(f"plot_scaling.py: {sys.executable} has no matplotlib: run it with Debian's "
             "/usr/bin/python3 after apt-get install python3-matplotlib (launch/setup.sh does), "
             "or pip install matplotlib for this interpreter")

matplotlib.use("Agg")  # files only; no display on a cluster node
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {"dilated": "tab:blue", "dense": "tab:red"}
DASH = {"fwd": "-", "bwd": "--", "weak": "-", "strong": ":"}


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def find(directory, word, exclude=None):
    matches = sorted(
        p
        for p in pathlib.Path(directory).glob("*.csv")
        if word in p.name and (exclude is None or exclude not in p.name)
    )
    return matches[-1] if matches else None


def series(rows, keys, x, y):
    """{key tuple: (xs, ys)} sorted by x, over rows with a value in column y."""
    out = {}
    for r in rows:
        if r.get(y, "") == "":
            continue
        out.setdefault(tuple(r[k] for k in keys), []).append((float(r[x]), float(r[y])))
    return {k: tuple(zip(*sorted(v))) for k, v in out.items()}


def oversubscribed_note(ax, rows):
    over = sorted({int(r["ranks"]) for r in rows if r.get("oversubscribed") == "1"})
    if over:
        ax.text(0.01, 0.01, f"ranks {', '.join(map(str, over))}: more threads than cores "
                "(time-sliced, not scaling)", transform=ax.transAxes, fontsize=7,
                va="bottom", color="gray")


def plot_per_rank_count(rows, out, column, ylabel, filename, log_y=False):
    """One panel per mode: `column` against ranks, a line per attention kind and direction."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=not log_y)
    for ax, mode in zip(axes, ("weak", "strong")):
        mode_rows = [r for r in rows if r["mode"] == mode]
        for (attn, direction), (xs, ys) in series(
            mode_rows, ("attention", "direction"), "ranks", column
        ).items():
            ax.plot(xs, ys, DASH[direction], marker="o", color=STYLE[attn],
                    label=f"{attn} {direction}")
        ax.set_xscale("log", base=2)
        if log_y:
            ax.set_yscale("log")
        ax.set_xlabel("ranks")
        ax.set_title(f"{mode} scaling")
        oversubscribed_note(ax, mode_rows)
    axes[0].set_ylabel(ylabel)
    axes[0].legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(out / filename, dpi=120)
    plt.close(fig)


def plot_latency(model, scaling, out):
    """Left: the cost model's sweep; right: this run's weak scaling (N grows with ranks).
    Two panels, since the model's parameters describe another machine (model.txt says
    which) than the one that measured."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    ax = axes[0]
    if model:
        for column, dash, label in (("fwd_ms", "-", "forward"), ("bwd_ms", "--", "backward")):
            for (attn,), (xs, ys) in series(model, ("attention",), "N", column).items():
                ax.plot(xs, ys, dash, color=STYLE[attn], label=f"{attn} {label}")
        ax.legend(fontsize=8)
    ax.set_title("cost model (parameters in model.txt); ranks grow with N", fontsize=9)
    ax = axes[1]
    if scaling:
        weak = [r for r in scaling if r["mode"] == "weak"]
        for (attn, direction), (xs, ys) in series(
            weak, ("attention", "direction"), "tokens", "time_ms"
        ).items():
            ax.plot(xs, ys, DASH[direction], marker="o", color=STYLE[attn],
                    label=f"{attn} {direction}")
        ax.legend(fontsize=8)
        oversubscribed_note(ax, weak)
    ax.set_title("measured, weak scaling (this run)", fontsize=9)
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length N (tokens)")
        ax.set_ylabel("latency of one attention call (ms)")
        ax.grid(True, which="both", lw=0.3)
    fig.tight_layout()
    fig.savefig(out / "latency_vs_length.png", dpi=120)
    plt.close(fig)


def plot_bytes(model, scaling, out):
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    if scaling:
        ax = axes[0]
        for (mode, attn), (xs, ys) in series(
            [r for r in scaling if r["direction"] == "fwd"], ("mode", "attention"), "ranks",
            "recv_bytes_per_rank",
        ).items():
            ax.plot(xs, [y / 1e6 for y in ys], DASH[mode], marker="o", color=STYLE[attn],
                    label=f"{attn} {mode}")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("ranks")
        ax.set_ylabel("MB received per rank per forward call")
        ax.set_title("measured (communicator counters)")
        ax.legend(fontsize=8)
    if model:
        ax = axes[1]
        positive = [r for r in model if float(r["fwd_recv_MB_per_rank"]) > 0]  # log axis
        for (attn,), (xs, ys) in series(positive, ("attention",), "N",
                                        "fwd_recv_MB_per_rank").items():
            ax.plot(xs, ys, "-", color=STYLE[attn], label=attn)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length N (ranks grow with N)")
        ax.set_ylabel("MB received per rank per forward call")
        ax.set_title("cost model")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "bytes_per_rank.png", dpi=120)
    plt.close(fig)


def plot_validation(rows, out):
    fig, ax = plt.subplots(figsize=(5, 5))
    for r in rows:
        measured, predicted = float(r["time_ms"]), float(r["pred_time_ms"])
        over = r.get("oversubscribed") == "1"
        ax.plot(measured, predicted, "x" if over else "o", color=STYLE[r["attention"]],
                mfc="none")
    lo = min(min(float(r["time_ms"]), float(r["pred_time_ms"])) for r in rows)
    hi = max(max(float(r["time_ms"]), float(r["pred_time_ms"])) for r in rows)
    ax.plot([lo, hi], [lo, hi], color="gray", lw=0.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured ms per call")
    ax.set_ylabel("predicted ms per call")
    ax.set_title("cost model against measurement (blue: dilated, red: dense)\n"
                 "o: ranks fit the cores, x: oversubscribed",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "model_validation.png", dpi=120)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="?", help="directory holding the suite's CSV files")
    parser.add_argument("--scaling")
    parser.add_argument("--model")
    parser.add_argument("--validation")
    parser.add_argument("--out", help="where the PNG files go (default: RESULTS_DIR)")
    args = parser.parse_args()
    if args.results:
        args.scaling = args.scaling or find(args.results, "scaling")
        args.model = args.model or find(args.results, "model", exclude="validation")
        args.validation = args.validation or find(args.results, "validation")
    out = pathlib.Path(args.out or args.results or ".")
    out.mkdir(parents=True, exist_ok=True)
    if not (args.scaling or args.model or args.validation):
        sys.exit("plot_scaling.py: no scaling, model or validation CSV given or found")

    scaling = read_rows(args.scaling) if args.scaling else []
    model = read_rows(args.model) if args.model else []
    validation = read_rows(args.validation) if args.validation else []
    written = []
    if scaling:
        plot_per_rank_count(scaling, out, "efficiency",
                            "efficiency = tokens/s / (ranks x tokens/s at 1 rank)",
                            "scaling_efficiency.png")
        plot_per_rank_count(scaling, out, "tokens_per_s", "tokens/s", "scaling_tokens_per_s.png",
                            log_y=True)
        written += ["scaling_efficiency.png", "scaling_tokens_per_s.png"]
    else:
        print("plot_scaling.py: no scaling CSV: skipping the efficiency and tokens/s figures")
    if scaling or model:
        plot_latency(model, scaling, out)
        plot_bytes(model, scaling, out)
        written += ["latency_vs_length.png", "bytes_per_rank.png"]
    if validation:
        plot_validation(validation, out)
        written.append("model_validation.png")
    for name in written:
        print(f"wrote {out / name}")


if __name__ == "__main__":
    main()
