"""Time of `load_stack` (validation/stack_config.py) on every stack file and on a few bad ones.

Each document is loaded --repetitions times in this one process (after one untimed load, so
imports and first-use work are not counted); per document the median and 90th percentile of one
load are printed in milliseconds, then the total time of all the timed loads. The bad documents
are made as tests/schema/test_bad_stack_files.py makes them: stacks/example.yaml with one text
edit (a wrong type, an unknown key, a missing required key), and its invalid-YAML fixture.
A bad document must raise StackFileError; anything else stops the benchmark.

    .venv/bin/python benchmarks/load_stack.py [--repetitions 50]

Prints figures; asserts nothing about them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from validation.problems import StackFileError  # noqa: E402
from validation.stack_config import load_stack  # noqa: E402

EXAMPLE = REPO / "stacks" / "example.yaml"
INVALID_YAML = REPO / "tests" / "schema" / "bad" / "invalid-yaml.yaml"
# (name, old text, new text): one edit to the example each, as in tests/schema/test_bad_stack_files.py.
BAD_EDITS = [
    ("bad:wrong-type", "count: 2", "count: two"),
    ("bad:unknown-key", "  ods_code: RX1", "  ods_code: RX1\n  colour: blue"),
    ("bad:missing-required-key", "environment: dev               # dev | test | prod\n", ""),
]


def _bad_documents(directory: Path) -> list[tuple[str, Path]]:
    text = EXAMPLE.read_text()
    documents = []
    for name, old, new in BAD_EDITS:
        if old not in text:
            raise SystemExit(f"{name}: stacks/example.yaml no longer contains {old!r}")
        path = directory / f"{name.removeprefix('bad:')}.yaml"
        path.write_text(text.replace(old, new, 1))
        documents.append((name, path))
    documents.append(("bad:invalid-yaml", INVALID_YAML))
    return documents


def _load_once(path: Path, bad: bool) -> float:
    start = time.perf_counter()
    try:
        load_stack(path)
    except StackFileError:
        if not bad:
            raise
    else:
        if bad:
            raise SystemExit(f"{path}: loaded without error, but it is meant to be bad")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=50)
    args = parser.parse_args()
    if args.repetitions < 1:
        parser.error(f"--repetitions: must be 1 or more (got {args.repetitions})")

    with tempfile.TemporaryDirectory(prefix="load-stack-") as scratch:
        documents = [(path.name, path) for path in sorted((REPO / "stacks").glob("*.yaml"))]
        documents += _bad_documents(Path(scratch))
        total = 0.0
        print(f"{'document':<32} {'median ms':>10} {'p90 ms':>10}   ({args.repetitions} loads each)")
        for name, path in documents:
            bad = name.startswith("bad:")
            _load_once(path, bad)  # untimed: first use
            times = sorted(_load_once(path, bad) for _ in range(args.repetitions))
            total += sum(times)
            p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
            print(f"{name:<32} {statistics.median(times) * 1000:10.2f} {p90 * 1000:10.2f}")
        print(f"total {total:.3f} s for {args.repetitions * len(documents)} loads")


if __name__ == "__main__":
    main()
