"""CronJobs end to end: Jobs created on the minute, concurrency policies, history limits, and
`kubectl create job --from=cronjob/x`. Schedules run on the wall clock, so the scheduling tests
wait for the next minute and are marked slow."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from conftest import Cluster
from test_workloads_support import apply, finish_all, get, has_event, wait_until


def cronjob_manifest(name: str, schedule: str = "*/1 * * * *", extra: str = "") -> str:
    return f"""
apiVersion: batch/v1
kind: CronJob
metadata: {{name: {name}}}
spec:
  schedule: "{schedule}"
{extra}  jobTemplate:
    metadata:
      labels: {{cron: {name}}}
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: main
            image: busybox
            command: [sleep, "10"]
"""


def jobs_of(cluster: Cluster, ns: str, cron: str) -> list[dict]:
    items = get(cluster, "jobs", "-n", ns, "-l", f"cron={cron}")["items"]
    return sorted(items, key=lambda j: j["metadata"]["name"])


def cj_status(cluster: Cluster, ns: str, name: str) -> dict:
    return get(cluster, "cronjob", name, "-n", ns).get("status") or {}


@pytest.mark.slow
@pytest.mark.conformance("CronJob AllowConcurrent")
def test_cronjob_creates_a_job_each_minute(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, cronjob_manifest("tick"))
    job = wait_until(lambda: jobs_of(cluster, ns, "tick"), timeout=75, what="the first scheduled job")[0]
    scheduled = job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    ts = datetime.strptime(scheduled, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    assert ts % 60 == 0
    assert job["metadata"]["name"] == f"tick-{int(ts) // 60}"
    ref = job["metadata"]["ownerReferences"][0]
    assert ref["kind"] == "CronJob" and ref["name"] == "tick" and ref["controller"] is True
    st = wait_until(lambda: cj_status(cluster, ns, "tick").get("active") and cj_status(cluster, ns, "tick"),
                    what="active")
    assert st["active"][0]["name"] == job["metadata"]["name"] and st["active"][0]["kind"] == "Job"
    assert datetime.strptime(st["lastScheduleTime"], "%Y-%m-%dT%H:%M:%S%z").timestamp() == ts
    assert has_event(cluster, ns, "tick", "SuccessfulCreate", f"Created job {job['metadata']['name']}")
    row = cluster.kubectl("get", "cronjob", "tick", "-n", ns, "--no-headers").stdout.split()
    assert row[1:6] == ["*/1", "*", "*", "*", "*"] and row[8] == "1"

    # the job finishes: it leaves the active list and counts as the last success
    wait_until(lambda: finish_all(cluster, ns, f"job-name={job['metadata']['name']}") or
               get(cluster, "job", job["metadata"]["name"], "-n", ns).get("status", {}).get("succeeded"), timeout=30,
               what="the job's pod finished")
    wait_until(lambda: not cj_status(cluster, ns, "tick").get("active"), what="active cleared")
    assert cj_status(cluster, ns, "tick").get("lastSuccessfulTime")
    assert has_event(cluster, ns, "tick", "SawCompletedJob", f"Saw completed job: {job['metadata']['name']}, "
                                                               "condition: Complete")
    # Allow: the next minute brings another job
    wait_until(lambda: len(jobs_of(cluster, ns, "tick")) >= 2, timeout=75, what="a second job")


@pytest.mark.slow
@pytest.mark.conformance("CronJob ForbidConcurrent")
def test_cronjob_forbid_skips_while_a_job_runs(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, cronjob_manifest("solo", extra="  concurrencyPolicy: Forbid\n"))
    wait_until(lambda: jobs_of(cluster, ns, "solo"), timeout=75, what="first job")
    wait_until(lambda: has_event(cluster, ns, "solo", "JobAlreadyActive",
                                 "Not starting job because prior execution is running and concurrency policy is Forbid"),
               timeout=75, what="the next run skipped")
    assert len(jobs_of(cluster, ns, "solo")) == 1


def test_cronjob_suspended_creates_nothing_and_manual_job_from_cronjob(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, cronjob_manifest("manual", extra="  suspend: true\n"))
    r = cluster.kubectl("create", "job", "once", "--from=cronjob/manual", "-n", ns)
    assert "job.batch/once created" in r.stdout
    job = get(cluster, "job", "once", "-n", ns)
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert job["metadata"]["labels"]["cron"] == "manual"
    # the Job controller runs it like any other
    wait_until(lambda: get(cluster, "job", "once", "-n", ns).get("status", {}).get("active") == 1, what="a pod")
    # a suspended CronJob does not schedule; the manual job is not one of its scheduled runs
    time.sleep(1)
    assert not cj_status(cluster, ns, "manual").get("lastScheduleTime")
    assert [j["metadata"]["name"] for j in jobs_of(cluster, ns, "manual")] == ["once"]


def test_cronjob_history_limits_prune_finished_jobs(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, cronjob_manifest("hist", schedule="0 0 1 1 *",
                                        extra="  successfulJobsHistoryLimit: 1\n  failedJobsHistoryLimit: 0\n"))
    for n in ("h1", "h2"):
        cluster.kubectl("create", "job", n, "--from=cronjob/hist", "-n", ns)
        wait_until(lambda n=n: get(cluster, "job", n, "-n", ns).get("status", {}).get("active"), what="pod")
        finish_all(cluster, ns, f"job-name={n}")
        wait_until(lambda n=n: get(cluster, "job", n, "-n", ns).get("status", {}).get("succeeded"), what="done")
        time.sleep(1.1)  # distinct start times
    wait_until(lambda: [j["metadata"]["name"] for j in jobs_of(cluster, ns, "hist")] == ["h2"], what="h1 pruned")
    assert has_event(cluster, ns, "hist", "SuccessfulDelete", "Deleted job h1")


def test_cronjob_invalid_time_zone_is_rejected(cluster: Cluster, ns: str) -> None:
    r = cluster.kubectl("apply", "-n", ns, "-f", "-", check=False,
                        input=cronjob_manifest("tz", extra="  timeZone: Mars/Olympus\n"))
    assert r.returncode != 0 and "timeZone" in r.stderr
    apply(cluster, ns, cronjob_manifest("tz", schedule="@hourly", extra="  timeZone: Europe/Berlin\n"))
    assert get(cluster, "cronjob", "tz", "-n", ns)["spec"]["timeZone"] == "Europe/Berlin"
    assert datetime.now(UTC)  # scheduling in a zone is covered by the unit of most_recent_schedule_time below


def test_most_recent_schedule_time_counts_missed_runs() -> None:
    from zoneinfo import ZoneInfo

    from kubelite.controllers.cronjob import job_name, most_recent_schedule_time, parse_schedule

    created = datetime(2024, 3, 1, 10, 0, 30, tzinfo=UTC).timestamp()
    cj = {"metadata": {"name": "c", "creationTimestamp": "2024-03-01T10:00:30Z"},
          "spec": {"schedule": "*/5 * * * *"}, "status": {}}
    expr, tz = parse_schedule(cj)
    t, missed = most_recent_schedule_time(cj, created + 60, expr, tz)
    assert t is None and missed == 0
    t, missed = most_recent_schedule_time(cj, created + 16 * 60, expr, tz)
    assert t == datetime(2024, 3, 1, 10, 15, tzinfo=UTC).timestamp() and missed == 3
    assert job_name(cj, t) == f"c-{int(t) // 60}"
    cj["spec"]["startingDeadlineSeconds"] = 200
    t, missed = most_recent_schedule_time(cj, created + 16 * 60, expr, tz)
    assert missed == 1
    cj["spec"] = {"schedule": "@daily", "timeZone": "Asia/Tokyo"}
    expr, tz = parse_schedule(cj)
    assert tz == ZoneInfo("Asia/Tokyo")
    t, _ = most_recent_schedule_time(cj, datetime(2024, 3, 2, 12, 0, tzinfo=UTC).timestamp(), expr, tz)
    assert t == datetime(2024, 3, 1, 15, 0, tzinfo=UTC).timestamp()  # midnight in Tokyo
