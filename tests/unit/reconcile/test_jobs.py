"""What a Job says about itself, and how a failed one is explained."""

from __future__ import annotations

from typing import Any

from ai_moderator_operator.reconcile.jobs import finished_at, job_state, last_failed_attempt
from world import NS, World


def pod(finished: str, code: int, message: str = "", job: str = "j") -> dict[str, Any]:
    terminated = {"exitCode": code, "reason": "Error" if code else "Completed", "finishedAt": finished,
                  "message": message}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{job}-{finished}-{code}", "namespace": NS,
                         "labels": {"batch.kubernetes.io/job-name": job}},
            "status": {"containerStatuses": [{"state": {"terminated": terminated}}]}}


def test_a_failed_job_is_explained_by_its_last_failed_pod() -> None:
    pods = [pod("2026-11-26T03:00:20Z", 1, "Traceback ...\nalembic.util.exc.CommandError: Can't locate revision 0002\n"),
            pod("2026-11-26T03:00:01Z", 1, "older failure")]
    assert last_failed_attempt(pods) == "last attempt exited 1 (Error): alembic.util.exc.CommandError: " \
                                        "Can't locate revision 0002"
    assert last_failed_attempt([pod("t", 137)]) == "last attempt exited 137 (Error)"
    assert last_failed_attempt([pod("t", 0)]) == ""


def test_job_state_and_finish_time() -> None:
    running = {"status": {}}
    done = {"status": {"completionTime": "2026-11-26T03:00:00Z",
                       "conditions": [{"type": "Complete", "status": "True"}]}}
    failed = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
                                         "message": "too slow", "lastTransitionTime": "2026-11-26T04:00:00Z"}]}}
    assert job_state(running).phase == "Running" and finished_at(running) == ""
    assert job_state(done).phase == "Succeeded" and job_state(done).completed.isoformat().startswith("2026-11-26T03")
    assert job_state(failed) == ("Failed", "DeadlineExceeded: too slow", None)
    assert finished_at(failed) == "2026-11-26T04:00:00Z"


async def test_a_finished_jobs_pods_are_read_once(world: World) -> None:
    world.kube.put({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": NS, "uid": "u1"},
                    "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}})
    world.kube.put(pod("2026-11-26T03:00:20Z", 2, "disk full", job="j"))
    job = world.kube.objects[("batch/v1", "Job", NS, "j")]
    first = await world.outcomes.of(job)
    world.kube.objects = {k: v for k, v in world.kube.objects.items() if k[1] != "Pod"}
    again = await world.outcomes.of(job)
    assert first == again and "disk full" in first.message
