"""benchmarks/evidence_counts.py reads hypothesis' statistics report: examples summed over phases, per test."""

from __future__ import annotations

import importlib.util
import sys

from tests.conftest import REPO

_spec = importlib.util.spec_from_file_location("evidence_counts", REPO / "benchmarks" / "evidence_counts.py")
assert _spec and _spec.loader
evidence_counts = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = evidence_counts  # its dataclasses look their module up by name
_spec.loader.exec_module(evidence_counts)

REPORT = """
============================ Hypothesis Statistics =============================

tests/hostile/test_a.py::test_one:

  - during reuse phase (0.01 seconds):
    - Typical runtimes: ~ 1ms, of which < 1ms in data generation
    - 1 passing, 1 failing, and 0 invalid test cases

  - during generate phase (4.93 seconds):
    - Typical runtimes: ~ 1-35 ms, of which < 1ms in data generation
    - 120 passing, 0 failing, and 13 invalid test cases

  - during shrink phase (0.50 seconds):
    - 7 passing, 4 failing, and 2 invalid test cases

  - Stopped because nothing left to do


tests/hostile/test_b.py::test_two[case]:

  - during generate phase (0.77 seconds):
    - 150 passing, 0 failing, and 0 invalid test cases

  - Stopped because settings.max_examples=150
"""


def test_examples_are_summed_over_every_phase_of_each_test():
    tests = evidence_counts.parse_statistics(REPORT)
    assert [(t.name, t.passing, t.failing, t.invalid, t.phases) for t in tests] == [
        ("tests/hostile/test_a.py::test_one", 128, 5, 15, ["reuse", "generate", "shrink"]),
        ("tests/hostile/test_b.py::test_two[case]", 150, 0, 0, ["generate"]),
    ]


def test_output_without_statistics_gives_no_tests():
    assert evidence_counts.parse_statistics("89 passed in 76.22s") == []
