#!/usr/bin/env bash
# longnet against PyTorch on the same training run: `longnet bench train` and
# bench/torch_longnet.py (the same model, initial values, data windows, schedule and AdamW
# in torch ops), alternating, REPEATS times each, in both thread layouts of the README (one
# process with 2 threads; 2 data-parallel processes with one thread each). Prints one
# line per run, then per layout the median over runs of each one's median step time, the
# tokens/s and the speed-up (torch's step time / longnet's), and both runs' loss at the
# last step (they train the same steps from the same start: equal to about 1e-5).
#
#   bash bench/train_vs_torch.sh DATA_DIR [REPEATS] [STEPS]   (DATA_DIR: `longnet data prepare --out`)
#
# Environment: LONGNET (the binary) [build/launch/longnet]; PYTHON (one with torch, numpy,
# h5py) [.venv/bin/python, else python3]; CSV (also write the summary there).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data=${1:?usage: bench/train_vs_torch.sh DATA_DIR [REPEATS] [STEPS]}
repeats=${2:-3}
steps=${3:-30}
warmup=3
longnet=${LONGNET:-$root/build/launch/longnet}
python=${PYTHON:-}
if [[ -z $python ]]; then
  if [[ -x $root/.venv/bin/python ]]; then python=$root/.venv/bin/python; else python=python3; fi
fi
[[ -x $longnet ]] || { echo "train_vs_torch.sh: $longnet is missing (bash launch/setup.sh)" >&2; exit 2; }
[[ -f $data/train.h5 ]] || { echo "train_vs_torch.sh: no $data/train.h5 (longnet data prepare --out $data)" >&2; exit 2; }
"$python" -c "import torch, numpy, h5py" 2>/dev/null ||
  { echo "train_vs_torch.sh: $python lacks torch, numpy or h5py (apt-get install python3-torch python3-h5py)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Prints "median_step_s tokens_per_s last_loss" of one run.
run_longnet() {
  local layout=$1 csv=$work/longnet.csv
  local args=(bench train --set "data.dir=$data" --warmup "$warmup" --steps "$steps" --csv "$csv")
  if [[ $layout == 1x2 ]]; then
    OMP_NUM_THREADS=2 "$longnet" "${args[@]}" >"$work/out.txt" 2>&1
  else
    LONGNET_BIN="$longnet" bash "$root/launch/mpirun.sh" -n 2 --threads 1 --bind none "${args[@]}" \
      >"$work/out.txt" 2>&1
  fi || { cat "$work/out.txt" >&2; echo "train_vs_torch.sh: longnet failed" >&2; exit 1; }
  "$python" - "$csv" <<'EOF'
import csv, sys
row = next(csv.DictReader(open(sys.argv[1])))
print(row["median_step_s"], row["tokens_per_s"], row["last_loss"])
EOF
}

run_torch() {
  local layout=$1 json=$work/torch.json threads=2 world=1
  [[ $layout == 2x1 ]] && { threads=1; world=2; }
  OMP_NUM_THREADS=$threads "$python" "$root/bench/torch_longnet.py" --data "$data" \
    --warmup "$warmup" --steps "$steps" --threads "$threads" --world "$world" --json "$json" \
    >"$work/out.txt" 2>&1 || { cat "$work/out.txt" >&2; echo "train_vs_torch.sh: torch failed" >&2; exit 1; }
  "$python" - "$json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(r["median_step_s"], r["tokens_per_s"], f'{r["losses"][-1]:.4f}')
EOF
}

echo "# $(date -u +%Y-%m-%d) $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; torch $("$python" -c 'import torch; print(torch.__version__)')"
echo "# the default config (configs/tiny.toml), $warmup untimed + $steps timed steps per run, $repeats runs per variant and layout, alternating"
echo "# variant  layout  median_step_s  tokens_per_s  last_loss"
for layout in 1x2 2x1; do
  for ((i = 1; i <= repeats; ++i)); do
    # Assigned first: a failing substitution inside printf's arguments would not stop
    # the script under set -e.
    ours=$(run_longnet "$layout")
    printf 'longnet  %s  %s\n' "$layout" "$ours"
    theirs=$(run_torch "$layout")
    printf 'torch    %s  %s\n' "$layout" "$theirs"
  done
done | tee "$work/runs.txt"

echo "# per layout: median over runs; speed-up = torch step time / longnet step time"
"$python" - "$work/runs.txt" "${CSV:-}" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    variant, layout, step, rate, loss = line.split()
    runs.setdefault((layout, variant), []).append((float(step), float(rate), loss))
rows = []
for layout in ("1x2", "2x1"):
    ours, theirs = runs[(layout, "longnet")], runs[(layout, "torch")]
    a = statistics.median(s for s, _, _ in ours)
    b = statistics.median(s for s, _, _ in theirs)
    rows.append((layout, a, b, statistics.median(r for _, r, _ in ours),
                 statistics.median(r for _, r, _ in theirs), b / a, ours[-1][2], theirs[-1][2]))
    print(f"{layout}: longnet {a:.4f} s/step ({rows[-1][3]:.0f} tok/s), torch {b:.4f} s/step "
          f"({rows[-1][4]:.0f} tok/s): {b / a:.2f}x; last loss {ours[-1][2]} vs {theirs[-1][2]}")
if sys.argv[2]:
    with open(sys.argv[2], "w") as f:
        f.write("layout,longnet_step_s,torch_step_s,longnet_tokens_per_s,torch_tokens_per_s,"
                "speedup,longnet_last_loss,torch_last_loss\n")
        for r in rows:
            f.write(f"{r[0]},{r[1]:.5f},{r[2]:.5f},{r[3]:.0f},{r[4]:.0f},{r[5]:.3f},{r[6]},{r[7]}\n")
EOF
