"""Wall time of `blueprints allowlist resolve` per stack and ecosystem, against the real registries.

Each stack's allowlists are resolved --runs times (default 3) without writing anything (no record,
no --write); the median and every run are printed per ecosystem, with the closure's size and what
the allowlist lacks. An unreachable registry (CRAN from here) is printed as such with the time it
took to say so. pip keeps its download cache between runs, as on a trust's workstation, so its
first run is the cold one; npm starts each run from an empty cache. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/allowlist_resolve.py [STACK_FILE ...] [--runs 3] [--python PYTHON3.13]
        [--ecosystem pypi|npm|cran ...] [--upstream ECOSYSTEM=URL ...]

--upstream is the command's own option: CRAN against the recorded CRAN-format index, say, with
--upstream cran=file://$PWD/tests/unit/recorded/cran.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cli.allowlist import upstream_argument  # noqa: E402
from validation.allowlist_resolver import python_target, resolve_stack  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack_files", nargs="*",
                        default=[str(path.relative_to(REPO)) for path in sorted((REPO / "stacks").glob("*.yaml"))])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--python", help="a CPython 3.13 for pip (default: python3.13 on PATH, else this one)")
    parser.add_argument("--ecosystem", action="append", choices=("pypi", "npm", "cran"))
    parser.add_argument("--upstream", action="append", type=upstream_argument, default=[])
    args = parser.parse_args()
    target = python_target(args.python)
    print(f"pip evaluates markers with {target.interpreter} (Python {target.version[0]}.{target.version[1]}); "
          f"{args.runs} runs per stack")
    for stack in args.stack_files:
        walls: dict[str, list[float]] = {}
        totals: list[float] = []
        last = None
        for _ in range(args.runs):
            started = time.perf_counter()
            resolution = resolve_stack(REPO / stack, args.ecosystem, target.interpreter,
                                       upstreams=dict(args.upstream))
            totals.append(time.perf_counter() - started)
            for ecosystem, seconds in resolution.seconds.items():
                walls.setdefault(ecosystem, []).append(seconds)
            last = resolution
        assert last is not None
        print(f"{stack}: total median {statistics.median(totals):.2f} s "
              f"(runs: {', '.join(f'{wall:.2f}' for wall in totals)})")
        additions = last.additions()
        for ecosystem, entries in last.allowlists.items():
            if args.ecosystem and ecosystem not in args.ecosystem:
                continue
            if ecosystem in last.failures and ecosystem not in last.closures:
                print(f"  {ecosystem:<5} {len(entries):>3} entries: not resolved: {last.failures[ecosystem][:110]}")
                continue
            runs = walls.get(ecosystem, [])
            closure = last.closures[ecosystem]
            print(f"  {ecosystem:<5} {len(entries):>3} entries: median {statistics.median(runs):.2f} s "
                  f"(runs: {', '.join(f'{wall:.2f}' for wall in runs)}); closure "
                  f"{len({package.name for package in closure.packages()})} packages, "
                  f"{len(additions.get(ecosystem, []))} not listed")


if __name__ == "__main__":
    main()
