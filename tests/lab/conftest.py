"""The lab suites use the acceptance fixtures (a running lab, its hosts, the client namespace)."""

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
