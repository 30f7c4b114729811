"""The lab suites use the acceptance fixtures (a running lab, its hosts, the client namespace).

Every test in this folder needs root and the running lab: it is marked ``lab``, so the offline run
(``pytest -m "not lab"``) leaves it out. The lab's offline tests live in tests/lab/offline.
"""

from pathlib import Path

import pytest

from tests.acceptance.conftest import (
    RunningLab,
    analytics_host,
    gateway_host,
    git_host,
    lab,
    mirror_host,
    test_allowlists,
)

__all__ = ["RunningLab", "analytics_host", "gateway_host", "git_host", "lab", "mirror_host", "test_allowlists"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Their groups and order come from tests/acceptance/conftest.py (lab_schedule.py).
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.lab)
