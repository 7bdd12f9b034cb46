#!/usr/bin/env python3
"""Seed-to-seed spread of the quick grid's per-family I' quartiles: the noise floor.

Reads results/grid-mnist-quick/runs.csv (seed offset 0) and results/grid-mnist-quick-seed{1..4}/
runs.csv (experiments/grid-mnist-quick-seed*.toml), computes each family's I' quartiles over its
scored runs exactly as `ebgan report` and `ebgan compare` do (linear interpolation between order
statistics), and writes
- results/seed-spread/summary.md: the quartiles per offset and their spread (max - min);
- results/grid-mnist-quick/noise-floor.csv: family, quartile, offsets, spread, sd, the noise
  floor `ebgan compare` (and the verdict `just grid-mnist quick` ends with) judges a difference
  from the reference against.
That spread, on one machine with one classifier, is how far new random draws of the same runs
move a quartile.

    python3 scripts/seed_spread.py
"""
import csv
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ["grid-mnist-quick"] + [f"grid-mnist-quick-seed{k}" for k in range(1, 5)]
FAMILIES = ["gan", "ebgan", "ebgan-pt"]
QUARTILES = [("q1", 0.25), ("median", 0.5), ("q3", 0.75)]


def quantile(sorted_values, q):
    pos = q * (len(sorted_values) - 1)
    lo, hi = int(pos // 1), int(-(-pos // 1))
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def read(folder):
    rows = list(csv.DictReader(open(ROOT / "results" / folder / "runs.csv", newline="")))
    machines = sorted({r["machine"] for r in rows})
    paths = sorted({r.get("mkl_path", "") or "not recorded" for r in rows})
    classifiers = sorted({r["classifier"] for r in rows if r["i_prime"]})
    by_family = {}
    for r in rows:
        if r["i_prime"]:
            by_family.setdefault(r["family"], []).append(float(r["i_prime"]))
    return rows, machines, classifiers, {f: sorted(v) for f, v in by_family.items()}, paths


def main():
    data = [read(f) for f in FOLDERS]
    machines = sorted({m for d in data for m in d[1]})
    classifiers = sorted({c for d in data for c in d[2]})
    paths = sorted({p for d in data for p in d[4]})
    if len(classifiers) != 1:
        sys.exit(f"the folders were scored under {classifiers}: not comparable")
    n = len(FOLDERS)
    offsets = ", ".join(str(k) for k in range(n))
    out = ["# Seed-to-seed spread of the quick grid's I' quartiles\n"]
    out.append(
        "Written by `python3 scripts/seed_spread.py` from the runs.csv of "
        + ", ".join(f"`results/{f}/`" for f in FOLDERS)
        + f" (seed offsets {offsets}; {sum(len(d[0]) for d in data)} runs).\n"
    )
    out.append(
        f"Machine: {'; '.join(machines)}. MKL path: {'; '.join(paths)}. Classifier: {classifiers[0]}.\n"
    )
    head = " | ".join(f"offset {k}" for k in range(n))
    out.append(f"| family | quartile | {head} | spread (max - min) | sd |")
    out.append("|---|---|" + "---:|" * n + "---:|---:|")
    floor = []
    for fam in FAMILIES:
        for name, q in QUARTILES:
            v = [quantile(d[3][fam], q) for d in data]
            cells = " | ".join(f"{x:.3f}" for x in v)
            spread, sd = max(v) - min(v), statistics.stdev(v)
            out.append(f"| {fam} | {name} | {cells} | {spread:.3f} | {sd:.3f} |")
            floor.append([fam, name, n, repr(spread), repr(sd)])
    shares = []
    for fam in FAMILIES:
        s = [100 * sum(x < 0.5 for x in d[3][fam]) / len(d[3][fam]) for d in data]
        shares.append(f"| {fam} | " + " | ".join(f"{x:.1f}" for x in s) + f" | {max(s) - min(s):.1f} |")
    out.append("\nShare of scored runs below I' 0.5 (%):\n")
    out.append(f"| family | {head} | spread |")
    out.append("|---|" + "---:|" * n + "---:|")
    out.extend(shares)
    dest = ROOT / "results" / "seed-spread"
    dest.mkdir(exist_ok=True)
    text = "\n".join(out) + "\n"
    notes = dest / "notes.md"
    if notes.exists():
        text += "\n" + notes.read_text()
    (dest / "summary.md").write_text(text)
    with open(ROOT / "results" / FOLDERS[0] / "noise-floor.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["family", "quartile", "offsets", "spread", "sd"])
        w.writerows(floor)
    print(text)


if __name__ == "__main__":
    main()
