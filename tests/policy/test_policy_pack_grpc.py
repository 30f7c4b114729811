"""The policy pack as the Pulumi engine runs it: a process serving the analyzer gRPC protocol.

The engine starts the pack, reads the port it prints, asks for its policies, then sends each
resource (Analyze) and the whole stack (AnalyzeStack). These tests do the same with recorded
plans, so the pack is proven over the wire without the Pulumi CLI.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from tests.conftest import REPO
from tests.policy.fixtures import build
from validation.plan_recorder import Plan
from validation.policies import RULES


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    process = subprocess.Popen([sys.executable, "-u", str(REPO / "policy-pack")], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=REPO / "policy-pack", text=True)
    try:
        port = process.stdout.readline().strip()
        assert port.isdigit(), f"the pack printed {port!r}; stderr: {process.stderr.read() if not port else ''}"
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


def _struct(inputs: dict) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(inputs)
    return message


def diagnostics(stub: analyzer_pb2_grpc.AnalyzerStub, plan: Plan) -> list[analyzer_pb2.AnalyzeDiagnostic]:
    custom = [r for r in plan.resources if r.custom]
    found = []
    for resource in custom:
        response = stub.Analyze(analyzer_pb2.AnalyzeRequest(
            type=resource.type, properties=_struct(resource.inputs), urn=resource.urn, name=resource.name,
            options=analyzer_pb2.AnalyzerResourceOptions(parent=resource.parent or "")))
        found.extend(response.diagnostics)
    response = stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[
        analyzer_pb2.AnalyzerResource(type=r.type, properties=_struct(r.inputs), urn=r.urn, name=r.name,
                                      parent=r.parent or "", dependencies=r.dependencies)
        for r in custom]))
    found.extend(response.diagnostics)
    return found


def test_the_pack_declares_every_rule(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "trust-blueprints"
    assert [policy.name for policy in info.policies] == [rule.id for rule in RULES]


def test_the_example_environment_passes_the_pack(analyzer, example_plan):
    assert [(d.policyName, d.message) for d in diagnostics(analyzer, example_plan)] == []


@pytest.mark.parametrize("rule_id", ["TB-NET-001", "TB-VM-002", "TB-VM-006", "TB-KV-001", "TB-GOV-001"])
def test_the_pack_reports_a_violation_over_the_wire(analyzer, rule_id):
    found = diagnostics(analyzer, build(rule_id, "violating"))
    assert {d.policyName for d in found} == {rule_id}
    rule = next(rule for rule in RULES if rule.id == rule_id)
    expected = analyzer_pb2.EnforcementLevel.Value("MANDATORY" if rule.severity == "mandatory" else "ADVISORY")
    assert all(d.enforcementLevel == expected for d in found)
    if rule.cross_resource:  # a stack policy names the resource at fault; the engine knows it otherwise
        assert all(d.urn for d in found)
