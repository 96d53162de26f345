"""Jobs for the writer process in tests (importable there through PYTHONPATH)."""

from sanqu.topology import Issue, Report, TopologyError


def fail_gate(result: str) -> None:
    """Raise the error a planning write raises when a result fails the gate."""
    report = Report(issues=[Issue("gap", result, "a gap", 900.0, 1.0, 2.0)])
    raise TopologyError(f"the levels of {result} fail the topology gate", report)
