"""Compares runs*.csv files row by row (matched by run_id): which columns differ, and by how
much. The columns a rerun always changes (wall time, timestamp, machine, matmul precision
recorded since) are left out unless asked for.

Usage: python3 scripts/compare_runs.py A.csv B.csv [C.csv ...] [--all-columns]
Exits 1 when any two files differ in a compared column (or in their run ids).
"""
import csv
import sys

VOLATILE = {"wall_s", "finished_at", "machine", "matmul_precision"}


def rows(path):
    with open(path, newline="") as f:
        return {r["run_id"]: r for r in csv.DictReader(f)}


def main(args):
    every = "--all-columns" in args
    paths = [a for a in args if not a.startswith("--")]
    base, differ = rows(paths[0]), False
    for path in paths[1:]:
        other = rows(path)
        if set(base) != set(other):
            print(f"{path}: other run ids ({len(set(base) ^ set(other))} not in both)")
            differ = True
        cols = {}
        for rid in sorted(set(base) & set(other)):
            for k, v in base[rid].items():
                if (every or k not in VOLATILE) and other[rid].get(k) != v:
                    cols.setdefault(k, []).append(rid)
        print(f"{paths[0]} vs {path}: {len(set(base) & set(other))} runs in both; "
              + ("equal in every compared column" if not cols else
                 "; ".join(f"{k} differs in {len(v)}" for k, v in sorted(cols.items()))))
        differ |= bool(cols)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
