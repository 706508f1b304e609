#!/usr/bin/env python3
"""Checks that a training run's JSON log (`longnet train --log-json`) tells the same story
as a reference run's: exits 1 with one line per difference.

    compare_train_logs.py GOT WANT STEPS

GOT may be the log of a run that was stopped and resumed any number of times (each start
appends to it). It must hold every step 1..STEPS exactly once, in order, with the loss
of the reference at each step, and the same final validation loss. The log prints losses
to 6 decimals, so equal means equal to 1e-6: a resumed run that is not bit-for-bit the
uninterrupted one drifts apart within a few steps far beyond that.
"""
import json
import sys


def read(path):
    steps, final = [], None
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            if "final_validation_loss" in record:
                final = record["final_validation_loss"]
            elif "loss" in record:
                steps.append((record["step"], record["loss"]))
    return steps, final


def main():
    got_path, want_path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    got, got_final = read(got_path)
    want, want_final = read(want_path)
    problems = []
    if [s for s, _ in got] != list(range(1, count + 1)):
        problems.append(f"{got_path}: steps are not 1..{count} once each: {[s for s, _ in got]}")
    if [s for s, _ in want] != list(range(1, count + 1)):
        problems.append(f"{want_path}: steps are not 1..{count} once each")
    if not problems:
        for (step, a), (_, b) in zip(got, want):
            if abs(a - b) > 1e-6:
                problems.append(f"step {step}: loss {a} vs reference {b}")
    if got_final is None or want_final is None or abs(got_final - want_final) > 1e-6:
        problems.append(f"final validation loss {got_final} vs reference {want_final}")
    else:
        print(f"{count} steps, every loss equal; final validation loss {got_final} in both")
    for problem in problems[:10]:
        print(f"MISMATCH {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
