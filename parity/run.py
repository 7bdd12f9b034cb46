"""Runs several parity references in one process, so that torch is imported once.

Usage: python parity/run.py SCRIPT OUT/CASE [SCRIPT OUT/CASE ...]  (each SCRIPT a parity/*.py
with main(base), as `python parity/SCRIPT OUT/CASE` would run it).
"""
import importlib
import os
import sys


def main(args):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import common

    common.reproducible()
    for script, base in zip(args[::2], args[1::2]):
        importlib.import_module(os.path.splitext(script)[0]).main(base)


if __name__ == "__main__":
    main(sys.argv[1:])
