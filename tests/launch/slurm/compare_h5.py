#!/usr/bin/env python3
"""Compares the datasets of two HDF5 files; exits 1 with one line per difference.

    compare_h5.py GOT WANT --rtol 1e-5 [--datasets o,lse,...]   relative L2 per dataset
    compare_h5.py GOT WANT --exact                               every dataset bit for bit

Relative L2 is the measure tests/launch/test_attend_mpi.cpp uses for multi-rank attention (a sum
in another order moves the last bits). Non-finite entries (-inf log-sum-exp of rows that
see no key) must match exactly and are left out of the norm. Without --datasets, every
dataset of WANT is compared and GOT must hold the same set.
"""
import argparse
import sys

import h5py
import numpy as np


def datasets(h5):
    names = []
    h5.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return sorted(names)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("got")
    parser.add_argument("want")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--rtol", type=float, help="largest relative L2 difference per dataset")
    how.add_argument("--exact", action="store_true", help="bitwise equality")
    parser.add_argument("--datasets", help="comma-separated names (default: all of WANT)")
    args = parser.parse_args()

    problems = []
    with h5py.File(args.got, "r") as got, h5py.File(args.want, "r") as want:
        names = args.datasets.split(",") if args.datasets else datasets(want)
        if not args.datasets and datasets(got) != names:
            problems.append(f"dataset names differ: {datasets(got)} vs {names}")
        for name in names:
            if name not in got or name not in want:
                problems.append(f"{name}: missing from {args.got if name not in got else args.want}")
                continue
            a, b = got[name][()], want[name][()]
            if a.shape != b.shape or a.dtype != b.dtype:
                problems.append(f"{name}: {a.shape} {a.dtype} vs {b.shape} {b.dtype}")
                continue
            if args.exact:
                same = a.tobytes() == b.tobytes()
                print(f"{name}: {'bitwise equal' if same else 'DIFFERENT'} ({a.size} values)")
                if not same:
                    problems.append(f"{name}: not bitwise equal")
                continue
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            finite = np.isfinite(b64)
            if not np.array_equal(np.isfinite(a64), finite) or not np.array_equal(a64[~finite], b64[~finite]):
                problems.append(f"{name}: non-finite entries differ")
                continue
            diff = np.linalg.norm(a64[finite] - b64[finite])
            ref = np.linalg.norm(b64[finite])
            relative = diff / ref if ref > 0 else diff
            print(f"{name}: relative L2 {relative:.3e} (limit {args.rtol:g}, {a.size} values)")
            if not relative <= args.rtol:
                problems.append(f"{name}: relative L2 {relative:.3e} > {args.rtol:g}")
    for problem in problems:
        print(f"MISMATCH {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
