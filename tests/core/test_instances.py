"""Counting what runtimes observed into what the planner reads."""

from __future__ import annotations

from immute.core.instances import InstanceInfo, InstanceLabels, InstanceState, ready_counts
from immute.core.planning import Desired, Start, Stop, plan
from immute.core.spec import Strategy


def info(instance_id: str, process: str, release: str, state: InstanceState) -> InstanceInfo:
    labels = InstanceLabels(instance_id, "shop", process, release, "sha256:" + "0" * 64)
    return InstanceInfo(labels=labels, state=state, handle="1", port=None, started_at=0.0)


RUNNING, EXITED = InstanceState.RUNNING, InstanceState.EXITED


def test_only_running_and_ready_instances_count() -> None:
    seen = [
        info("web-1", "web", "v1", RUNNING),
        info("web-2", "web", "v1", RUNNING),
        info("web-3", "web", "v2", RUNNING),
        info("web-4", "web", "v2", EXITED),
        info("worker-1", "worker", "v2", RUNNING),
    ]
    counts = ready_counts(seen, ready={"web-1", "web-2", "web-3", "web-4"})
    assert counts == {"web": {"v1": 2, "v2": 1}}


def test_counts_feed_the_planner() -> None:
    seen = [info(f"web-{i}", "web", "v1", RUNNING) for i in range(2)]
    observed = ready_counts(seen, ready={"web-0", "web-1"})
    steps = plan(Desired("v2", {"web": 2}), observed, Strategy.model_validate({"type": "recreate"}))
    assert any(isinstance(step, Stop) and step.release == "v1" for step in steps)
    assert any(isinstance(step, Start) and step.release == "v2" for step in steps)
