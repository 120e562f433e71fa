"""Jobs end to end: completions and parallelism, failure backoff, Indexed jobs, pod failure policy,
deadlines, suspension, orphan adoption and the TTL-after-finished cleanup. The tests play the
kubelet: they move pods to Running, Succeeded or Failed through the status subresource."""

from __future__ import annotations

import time

import pytest
from conftest import Cluster
from test_workloads_support import (
    apply,
    finish,
    finish_all,
    get,
    has_event,
    make_running,
    pods,
    wait_until,
)


def job_manifest(name: str, extra: str = "", restart: str = "Never") -> str:
    return f"""
apiVersion: batch/v1
kind: Job
metadata: {{name: {name}}}
spec:
{extra}  template:
    spec:
      restartPolicy: {restart}
      containers:
      - name: main
        image: busybox
        command: [sh, -c, "exit 0"]
"""


def status(cluster: Cluster, ns: str, name: str) -> dict:
    return get(cluster, "job", name, "-n", ns).get("status") or {}


def condition(cluster: Cluster, ns: str, name: str, ctype: str) -> dict | None:
    for c in status(cluster, ns, name).get("conditions") or []:
        if c["type"] == ctype and c["status"] == "True":
            return c
    return None


def live(cluster: Cluster, ns: str, job: str) -> list[dict]:
    return [p for p in pods(cluster, ns, f"batch.kubernetes.io/job-name={job}")
            if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]


@pytest.mark.conformance("Jobs, active pods, graceful termination")
def test_job_runs_parallel_pods_to_completions(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, job_manifest("work", "  completions: 4\n  parallelism: 2\n"))
    wait_until(lambda: len(live(cluster, ns, "work")) == 2, what="parallelism 2")
    pod = live(cluster, ns, "work")[0]
    assert pod["metadata"]["name"].startswith("work-") and len(pod["metadata"]["name"]) == len("work-") + 5
    assert "batch.kubernetes.io/job-tracking" in pod["metadata"]["finalizers"]
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "Job"
    assert pod["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "work"
    make_running(cluster, ns, "batch.kubernetes.io/job-name=work")
    wait_until(lambda: status(cluster, ns, "work").get("ready") == 2 and status(cluster, ns, "work").get("active") == 2,
               what="2 active and ready")
    assert status(cluster, ns, "work").get("startTime")

    done = 0
    while done < 4:
        wait_until(lambda: live(cluster, ns, "work"), what="a live pod")
        done += len(finish_all(cluster, ns, "batch.kubernetes.io/job-name=work", limit=4 - done))
        wait_until(lambda d=done: status(cluster, ns, "work").get("succeeded", 0) == d, what=f"{done} succeeded")
    assert condition(cluster, ns, "work", "Complete") is not None
    st = status(cluster, ns, "work")
    assert st["succeeded"] == 4 and not st.get("active") and st.get("completionTime")
    assert st.get("uncountedTerminatedPods") == {} and st.get("ready") == 0 and st.get("terminating") == 0
    met = condition(cluster, ns, "work", "SuccessCriteriaMet")
    assert met is not None and met["reason"] == "CompletionsReached"
    assert condition(cluster, ns, "work", "Complete")["message"] == "Reached expected number of succeeded pods"
    # finished pods were counted once and let go of the tracking finalizer
    wait_until(lambda: all("batch.kubernetes.io/job-tracking" not in (p["metadata"].get("finalizers") or [])
                           for p in pods(cluster, ns, "batch.kubernetes.io/job-name=work")), what="finalizers removed")
    assert len(pods(cluster, ns, "batch.kubernetes.io/job-name=work")) == 4
    wait_until(lambda: has_event(cluster, ns, "work", "Completed", "Job completed"), what="Completed event")
    assert has_event(cluster, ns, "work", "SuccessfulCreate", "Created pod: work-")
    row = cluster.kubectl("get", "job", "work", "-n", ns, "--no-headers").stdout.split()
    assert row[1:3] == ["Complete", "4/4"]


@pytest.mark.slow
@pytest.mark.conformance("Jobs, completion after task failure")
def test_job_failures_back_off_and_hit_the_backoff_limit(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, job_manifest("flaky", "  backoffLimit: 1\n"))
    wait_until(lambda: len(live(cluster, ns, "flaky")) == 1, what="first pod")
    first = live(cluster, ns, "flaky")[0]["metadata"]["name"]
    t0 = time.time()
    finish(cluster, ns, first, exit_code=1)
    wait_until(lambda: status(cluster, ns, "flaky").get("failed") == 1, what="1 failed")
    # the replacement waits out the 10 s pod failure backoff
    second = wait_until(lambda: [p["metadata"]["name"] for p in live(cluster, ns, "flaky")], timeout=30,
                        what="a replacement")[0]
    assert time.time() - t0 >= 9
    finish(cluster, ns, second, exit_code=1)
    wait_until(lambda: condition(cluster, ns, "flaky", "Failed"), what="Failed")
    failed = condition(cluster, ns, "flaky", "Failed")
    assert failed["reason"] == "BackoffLimitExceeded" and failed["message"] == "Job has reached the specified backoff limit"
    assert condition(cluster, ns, "flaky", "FailureTarget")["reason"] == "BackoffLimitExceeded"
    assert status(cluster, ns, "flaky")["failed"] == 2
    wait_until(lambda: has_event(cluster, ns, "flaky", "BackoffLimitExceeded"), what="event")


@pytest.mark.slow
@pytest.mark.conformance("Ensure Pods of an Indexed Job get a unique index.")
def test_indexed_job_gives_each_pod_its_index(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, job_manifest("idx", "  completions: 3\n  parallelism: 3\n  completionMode: Indexed\n"))
    wait_until(lambda: len(live(cluster, ns, "idx")) == 3, what="3 pods")
    by_index = {}
    for p in live(cluster, ns, "idx"):
        ix = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        assert p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == ix
        assert p["metadata"]["name"].startswith(f"idx-{ix}-")
        assert p["spec"]["hostname"] == f"idx-{ix}"
        env = p["spec"]["containers"][0]["env"]
        assert {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
            "apiVersion": "v1",
            "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}} in env
        by_index[ix] = p["metadata"]["name"]
    assert sorted(by_index) == ["0", "1", "2"]
    finish(cluster, ns, by_index["1"])
    wait_until(lambda: status(cluster, ns, "idx").get("completedIndexes") == "1", what="index 1 done")
    # a failed index is retried under the same index
    finish(cluster, ns, by_index["0"], exit_code=1)
    wait_until(lambda: any(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == "0"
                           for p in live(cluster, ns, "idx")), timeout=30, what="index 0 again")
    finish_all(cluster, ns, "batch.kubernetes.io/job-name=idx")
    wait_until(lambda: condition(cluster, ns, "idx", "Complete"), what="complete")
    assert status(cluster, ns, "idx")["completedIndexes"] == "0-2"
    assert status(cluster, ns, "idx")["succeeded"] == 3 and status(cluster, ns, "idx")["failed"] == 1


@pytest.mark.conformance("Verify Pod Failure policy allows to fail job early on exit code.")
def test_pod_failure_policy_fails_the_job_on_an_exit_code(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, job_manifest("pfp", """  completions: 2
  parallelism: 2
  backoffLimit: 6
  podFailurePolicy:
    rules:
    - action: FailJob
      onExitCodes: {containerName: main, operator: In, values: [42]}
    - action: Ignore
      onPodConditions: [{type: DisruptionTarget}]
"""))
    wait_until(lambda: len(live(cluster, ns, "pfp")) == 2, what="2 pods")
    victim, other = [p["metadata"]["name"] for p in live(cluster, ns, "pfp")]
    finish(cluster, ns, victim, exit_code=42)
    wait_until(lambda: condition(cluster, ns, "pfp", "Failed"), what="Failed")
    failed = condition(cluster, ns, "pfp", "Failed")
    assert failed["reason"] == "PodFailurePolicy"
    assert failed["message"] == (f"Container main for pod {ns}/{victim} failed with exit code 42 matching FailJob "
                                 "rule at index 0")
    assert condition(cluster, ns, "pfp", "FailureTarget") is not None
    # the still-running pod was terminated
    assert other not in [p["metadata"]["name"] for p in live(cluster, ns, "pfp")]


@pytest.mark.slow
@pytest.mark.conformance("Ensure pod failure policy allows to ignore failure matching on the DisruptionTarget condition")
def test_pod_failure_policy_ignores_disruptions(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, job_manifest("ign", """  backoffLimit: 0
  podFailurePolicy:
    rules:
    - action: Ignore
      onPodConditions: [{type: DisruptionTarget}]
"""))
    wait_until(lambda: len(live(cluster, ns, "ign")) == 1, what="a pod")
    first = live(cluster, ns, "ign")[0]["metadata"]["name"]
    finish(cluster, ns, first, exit_code=137, conditions=[{"type": "DisruptionTarget", "status": "True",
                                                            "reason": "EvictionByEvictionAPI"}])
    # not counted against backoffLimit 0: a replacement comes at once and the job keeps going
    wait_until(lambda: [p for p in live(cluster, ns, "ign") if p["metadata"]["name"] != first], what="replacement")
    assert not status(cluster, ns, "ign").get("failed") and condition(cluster, ns, "ign", "Failed") is None
    finish_all(cluster, ns, "batch.kubernetes.io/job-name=ign")
    wait_until(lambda: condition(cluster, ns, "ign", "Complete"), what="complete")


def test_job_active_deadline(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, job_manifest("late", "  activeDeadlineSeconds: 2\n"))
    wait_until(lambda: condition(cluster, ns, "late", "Failed"), timeout=20, what="deadline")
    failed = condition(cluster, ns, "late", "Failed")
    assert failed["reason"] == "DeadlineExceeded" and failed["message"] == "Job was active longer than specified deadline"
    assert not live(cluster, ns, "late")
    wait_until(lambda: has_event(cluster, ns, "late", "DeadlineExceeded"), what="event")


@pytest.mark.conformance("Jobs, manage lifecycle")
def test_job_suspend_and_resume(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, job_manifest("nap", "  suspend: true\n  parallelism: 2\n  completions: 2\n"))
    wait_until(lambda: condition(cluster, ns, "nap", "Suspended"), what="Suspended")
    cond = condition(cluster, ns, "nap", "Suspended")
    assert cond["reason"] == "JobSuspended" and cond["message"] == "Job suspended"
    assert not pods(cluster, ns, "batch.kubernetes.io/job-name=nap")
    assert not status(cluster, ns, "nap").get("startTime")
    cluster.kubectl("patch", "job", "nap", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    wait_until(lambda: len(live(cluster, ns, "nap")) == 2, what="resumed pods")
    resumed = [c for c in status(cluster, ns, "nap")["conditions"] if c["type"] == "Suspended"][0]
    assert resumed["status"] == "False" and resumed["reason"] == "JobResumed"
    cluster.kubectl("patch", "job", "nap", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    wait_until(lambda: not live(cluster, ns, "nap"), what="pods removed on suspend")
    assert has_event(cluster, ns, "nap", "Suspended") and has_event(cluster, ns, "nap", "Resumed")
    # label, list by label, delete the collection
    cluster.kubectl("label", "job", "nap", "-n", ns, "tier=batch")
    assert [j["metadata"]["name"] for j in get(cluster, "jobs", "-n", ns, "-l", "tier=batch")["items"]] == ["nap"]
    cluster.kubectl("delete", "jobs", "-n", ns, "-l", "tier=batch")


@pytest.mark.conformance("Jobs, orphan pods, re-adoption")
def test_job_adopts_orphans_and_releases_relabelled_pods(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, job_manifest("adopt", "  parallelism: 2\n  completions: 2\n"))
    wait_until(lambda: len(live(cluster, ns, "adopt")) == 2, what="2 pods")
    pod = live(cluster, ns, "adopt")[0]["metadata"]["name"]
    cluster.kubectl("patch", "pod", pod, "-n", ns, "--type=json", "-p", '[{"op":"remove","path":"/metadata/ownerReferences"}]')
    wait_until(lambda: get(cluster, "pod", pod, "-n", ns)["metadata"].get("ownerReferences"), what="re-adopted")
    cluster.kubectl("label", "pod", pod, "-n", ns, "batch.kubernetes.io/controller-uid-", "controller-uid-")
    wait_until(lambda: not get(cluster, "pod", pod, "-n", ns)["metadata"].get("ownerReferences"), what="released")


@pytest.mark.slow
def test_ttl_after_finished_deletes_the_job(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, job_manifest("brief", "  ttlSecondsAfterFinished: 3\n"))
    wait_until(lambda: live(cluster, ns, "brief"), what="a pod")
    finish_all(cluster, ns, "batch.kubernetes.io/job-name=brief")
    wait_until(lambda: condition(cluster, ns, "brief", "Complete"), what="complete")
    done_at = time.time()
    wait_until(lambda: cluster.kubectl("get", "job", "brief", "-n", ns, check=False).returncode != 0, timeout=30,
               what="the job deleted")
    assert time.time() - done_at >= 2
    wait_until(lambda: not pods(cluster, ns, "batch.kubernetes.io/job-name=brief", include_terminating=True),
               what="its pods collected")
