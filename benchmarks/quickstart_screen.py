"""Screen candidate quickstart configurations: RMI - CE (paired, over images and seeds) vs time.

How the quickstart in experiments.yaml was chosen (docs/benchmarks.md, "Choosing the
quickstart"). Each candidate is the quickstart with some `--set` overrides; its runs (CE and RMI
by default, every seed) are trained with `rmi train` into one SQLite file, timed end to end, and
read back with `rmi table -f json`, whose Δ column carries the paired bootstrap interval.

    python benchmarks/quickstart_screen.py --name os8 --set model.output_stride=8 \
        --seeds 0 --out screen.jsonl

Prints one JSON line per candidate and appends it to --out.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _set(tree: dict, dotted: str, value: object) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        tree = tree.setdefault(key, {})
    tree[leaf] = value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="the candidate's experiment name")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seeds", default="0", help="comma-separated, e.g. 0,1")
    parser.add_argument("--methods", default="ce,rmi", help="runs of the quickstart to train")
    parser.add_argument("--rmi", default=None, help="YAML mapping replacing the rmi run's loss")
    parser.add_argument("--out", default="quickstart_screen.jsonl")
    parser.add_argument("--keep", default=None, help="folder to keep the database in")
    args = parser.parse_args()

    manifest = yaml.safe_load((ROOT / "experiments.yaml").read_text())
    spec = copy.deepcopy(manifest["experiments"]["quickstart"])
    for item in args.set:
        key, _, raw = item.partition("=")
        _set(spec["defaults"], key, yaml.safe_load(raw))
    methods = args.methods.split(",")
    spec["runs"] = {name: spec["runs"][name] for name in methods}
    if args.rmi:
        spec["runs"]["rmi"] = {"loss": yaml.safe_load(args.rmi)}
    spec["seeds"] = [int(s) for s in args.seeds.split(",")]
    spec.pop("crf", None)
    spec["tables"] = [{"kind": "methods", "split": spec["defaults"]["data"]["eval_split"]}]

    folder = Path(args.keep or tempfile.mkdtemp(prefix="rmi-screen-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "screen.yaml"
    path.write_text(yaml.safe_dump({"experiments": {args.name: spec}}, sort_keys=False))
    db = folder / "screen.db"
    seconds: dict[str, float] = {}
    for method in methods:
        for seed in spec["seeds"]:
            run = f"{method}-s{seed}"
            start = time.perf_counter()
            subprocess.run(
                ["rmi", "train", str(path), "-e", args.name, "-r", run, "--db", str(db)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            seconds[run] = round(time.perf_counter() - start, 1)
    table = subprocess.run(
        ["rmi", "table", "-e", args.name, "-k", "methods", "-f", "json", "--db", str(db)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = {"name": args.name, "set": args.set, "rmi": args.rmi, "seeds": spec["seeds"],
              "seconds": seconds, "table": json.loads(table)}  # fmt: skip
    line = json.dumps(result)
    print(line)
    with open(args.out, "a", encoding="utf-8") as out:
        out.write(line + "\n")


if __name__ == "__main__":
    sys.exit(main())
