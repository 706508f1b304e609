#!/usr/bin/env python3
"""The learning curve of a `longnet train --log-json FILE` run, as an SVG (no plotting
library needed): training loss per step, validation loss where measured, and the corpus's
unigram byte entropy as a reference line (nats per byte throughout).

    python3 bench/plot_training.py train.jsonl --out learning_curve.svg
"""

import argparse
import json
import sys


def load(path):
    steps, validation, entropy = [], [], None
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            if "loss" in record:
                steps.append((record["step"], record["loss"]))
            if "validation_loss" in record:
                validation.append((record["step"], record["validation_loss"]))
            if "final_validation_loss" in record:
                validation.append((record["step"], record["final_validation_loss"]))
                entropy = record.get("unigram_entropy")
    return steps, validation, entropy


def svg(steps, validation, entropy, title):
    width, height, margin = 720, 420, 60
    xs = [s for s, _ in steps + validation]
    ys = [v for _, v in steps + validation] + ([entropy] if entropy else [])
    x0, x1 = min(xs), max(xs)
    y0, y1 = 0.0, max(ys) * 1.05
    px = lambda x: margin + (x - x0) / max(x1 - x0, 1) * (width - 2 * margin)
    py = lambda y: height - margin - (y - y0) / (y1 - y0) * (height - 2 * margin)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           'font-family="sans-serif" font-size="12">',
           f'<text x="{width / 2}" y="20" text-anchor="middle">{title}</text>',
           f'<line x1="{margin}" y1="{height - margin}" x2="{width - margin}" '
           f'y2="{height - margin}" stroke="black"/>',
           f'<line x1="{margin}" y1="{margin}" x2="{margin}" y2="{height - margin}" stroke="black"/>',
           f'<text x="{width / 2}" y="{height - 20}" text-anchor="middle">step</text>',
           f'<text x="15" y="{height / 2}" transform="rotate(-90 15 {height / 2})" '
           'text-anchor="middle">loss (nats per byte)</text>']
    for i in range(6):
        y = y0 + (y1 - y0) * i / 5
        out.append(f'<text x="{margin - 5}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.2f}</text>')
        x = x0 + (x1 - x0) * i / 5
        out.append(f'<text x="{px(x):.1f}" y="{height - margin + 16}" text-anchor="middle">{x:.0f}</text>')
    points = " ".join(f"{px(s):.1f},{py(v):.1f}" for s, v in steps)
    out.append(f'<polyline points="{points}" fill="none" stroke="steelblue" stroke-width="1.5"/>')
    for s, v in validation:
        out.append(f'<circle cx="{px(s):.1f}" cy="{py(v):.1f}" r="4" fill="darkorange"/>')
    if entropy:
        out.append(f'<line x1="{margin}" y1="{py(entropy):.1f}" x2="{width - margin}" '
                   f'y2="{py(entropy):.1f}" stroke="gray" stroke-dasharray="6,4"/>')
        out.append(f'<text x="{width - margin}" y="{py(entropy) - 6:.1f}" text-anchor="end" '
                   f'fill="gray">unigram byte entropy {entropy:.3f}</text>')
    out.append(f'<text x="{width - margin}" y="{margin}" text-anchor="end" fill="steelblue">'
               'training loss</text>')
    out.append(f'<text x="{width - margin}" y="{margin + 16}" text-anchor="end" '
               'fill="darkorange">validation loss</text>')
    out.append("</svg>")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("log", help="JSON lines from longnet train --log-json")
    parser.add_argument("--out", default="learning_curve.svg")
    parser.add_argument("--title", default="longnet train")
    args = parser.parse_args()
    steps, validation, entropy = load(args.log)
    if not steps:
        sys.exit(f"plot_training: no step records in {args.log}")
    with open(args.out, "w") as f:
        f.write(svg(steps, validation, entropy, args.title))
    print(f"plot_training: {len(steps)} steps, {len(validation)} validation points -> {args.out}")


if __name__ == "__main__":
    main()
