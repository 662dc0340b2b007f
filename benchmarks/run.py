"""`make bench`: every benchmark in one run; results in bench-results/."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import operator, quality, workload


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["workload", "operator"], default=None)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    out = Path("bench-results")
    if args.only in (None, "workload"):
        print(quality.table(), flush=True)
        print(workload.table(workload.run(out, args.seconds)), flush=True)
    if args.only in (None, "operator"):
        print(operator.table(operator.run(out)), flush=True)


if __name__ == "__main__":
    main()
