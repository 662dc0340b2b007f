"""`make bench`: every benchmark in one run; results in bench-results/."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ai_moderator_workload.engine.evaluation import table

from . import blocklist, engine, operator, quality, workload


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["quality", "engine", "blocklist", "workload", "operator"], default=None)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    if args.only in (None, "quality"):
        results = quality.run()
        (out / "quality.json").write_text(json.dumps(results, indent=2))
        print(table(results), flush=True)
    if args.only in (None, "engine"):
        rows = engine.run()
        (out / "engine.json").write_text(json.dumps(rows, indent=2))
        print(engine.table(rows), flush=True)
    if args.only in (None, "blocklist"):
        rows = blocklist.run()
        (out / "blocklist.json").write_text(json.dumps(rows, indent=2))
        print(blocklist.table(rows), flush=True)
    if args.only in (None, "workload"):
        print(workload.table(workload.run(out, args.seconds)), flush=True)
    if args.only in (None, "operator"):
        print(operator.table(operator.run(out)), flush=True)


if __name__ == "__main__":
    main()
