"""batch/v1: Job and CronJob.

Mirrors pkg/apis/batch/v1/defaults.go, pkg/apis/batch/validation/validation.go, the Job strategy's
selector generation (pkg/registry/batch/job/strategy.go) and the printers. CronJob schedules are
checked by a port of robfig/cron's standard parser so that the error texts are upstream's.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Any

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common, pod
from kubelite.api.kinds.apps import (
    WIDE_CONTAINERS,
    WIDE_IMAGES,
    GoRepr,
    age_column,
    container_cells,
    definition,
    go_label_selector,
    immutable_selector,
    meta,
    semantic_equal,
    spec_of,
)
from kubelite.api.registry import Column, Obj, Registry, Resource

LEGACY_JOB_NAME_LABEL = "job-name"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"

# ---------------------------------------------------------------------------------------------
# Job


def default_job_spec(spec: dict) -> None:
    """SetDefaults_Job's spec part."""
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    pfp = spec.get("podFailurePolicy")
    if isinstance(pfp, dict):
        for rule in pfp.get("rules") or []:
            for pattern in rule.get("onPodConditions") or []:
                if not pattern.get("status"):
                    pattern["status"] = "True"
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if pfp is not None else "TerminatingOrFailed"
    if spec.get("manualSelector") is None:
        spec["manualSelector"] = False
    pod.default_pod_template(spec.setdefault("template", {}))


def default_job(obj: Obj) -> None:
    """SetDefaults_Job: spec defaults, and the Job's labels copied from the template when it has none."""
    spec = spec_of(obj)
    default_job_spec(spec)
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    m = meta(obj)
    if labels is not None and not m.get("labels"):
        # upstream aliases the map, so the labels generated in PrepareForCreate land on the Job too
        m["labels"] = labels


def prepare_create_job(obj: Obj) -> None:
    """Job strategy PrepareForCreate: generate the selector and pod labels, reset status."""
    spec = spec_of(obj)
    m = meta(obj)
    template = spec.setdefault("template", {})
    tmeta = template.get("metadata")
    if not isinstance(tmeta, dict):
        tmeta = template["metadata"] = {}
    tlabels = tmeta.get("labels")
    job_labels = m.get("labels")
    aliased = not job_labels or job_labels is tlabels
    if not spec.get("manualSelector"):
        if not isinstance(tlabels, dict):
            tlabels = tmeta["labels"] = {}
        name, uid = m.get("name") or "", m.get("uid") or ""
        for key in (LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL):
            tlabels.setdefault(key, name)
        for key in (LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL):
            tlabels.setdefault(key, uid)
        sel = spec.get("selector")
        if not isinstance(sel, dict):
            sel = spec["selector"] = {}
        ml = sel.get("matchLabels")
        if not isinstance(ml, dict):
            ml = sel["matchLabels"] = {}
        ml.setdefault(CONTROLLER_UID_LABEL, uid)
    if aliased and isinstance(tlabels, dict) and tlabels:
        # read-time defaulting upstream copies the (now generated) template labels onto the Job
        m["labels"] = dict(tlabels)
    obj["status"] = {}


def _has_label(template_meta: dict, path: str, key: str, expected: str) -> list[FieldError]:
    """ValidateHasLabel."""
    labels = template_meta.get("labels") or {}
    if key not in labels:
        return [ferr.required(f"{path}.labels[{key}]", f"must be '{expected}'")]
    if labels[key] != expected:
        return [ferr.invalid(f"{path}.labels[{key}]", labels[key], f"must be '{expected}'")]
    return []


def _validate_generated_selector(obj: Obj) -> list[FieldError]:
    spec = obj.get("spec") or {}
    if spec.get("manualSelector") or spec.get("selector") is None:
        return []
    m = obj.get("metadata") or {}
    uid, name = m.get("uid") or "", m.get("name") or ""
    errs: list[FieldError] = []
    if not uid:
        errs.append(ferr.required("metadata.uid", ""))
    tmeta = (spec.get("template") or {}).get("metadata") or {}
    tpath = "spec.template.metadata"
    errs.extend(_has_label(tmeta, tpath, LEGACY_CONTROLLER_UID_LABEL, uid))
    errs.extend(_has_label(tmeta, tpath, LEGACY_JOB_NAME_LABEL, name))
    errs.extend(_has_label(tmeta, tpath, CONTROLLER_UID_LABEL, uid))
    errs.extend(_has_label(tmeta, tpath, JOB_NAME_LABEL, name))
    expected = {LEGACY_CONTROLLER_UID_LABEL: uid, LEGACY_JOB_NAME_LABEL: name,
                CONTROLLER_UID_LABEL: uid, JOB_NAME_LABEL: name}
    if not common.selector_matches(spec["selector"], expected):
        errs.append(ferr.invalid("spec.selector", go_label_selector(spec["selector"]), "`selector` not auto-generated"))
    return errs


def validate_job_spec_common(spec: dict, path: str) -> list[FieldError]:
    """validateJobSpec: counts, completion mode, replacement policy, template and restartPolicy."""
    errs: list[FieldError] = []
    for key in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished"):
        if spec.get(key) is not None:
            errs.extend(common.non_negative(spec[key], f"{path}.{key}"))
    mode = spec.get("completionMode")
    if mode is not None and mode not in ("NonIndexed", "Indexed"):
        errs.append(ferr.not_supported(f"{path}.completionMode", mode, ["NonIndexed", "Indexed"]))
    if mode == "Indexed":
        if spec.get("completions") is None:
            errs.append(ferr.required(f"{path}.completions", "when completion mode is Indexed"))
        elif spec["completions"] > 100000:
            errs.append(ferr.invalid(f"{path}.completions", spec["completions"], "must be less than or equal to 100000 when completion mode is Indexed"))
    else:
        for key in ("backoffLimitPerIndex", "maxFailedIndexes"):
            if spec.get(key) is not None:
                errs.append(ferr.invalid(f"{path}.{key}", spec[key], "requires indexed completion mode"))
    prp = spec.get("podReplacementPolicy")
    if prp is not None:
        if prp not in ("TerminatingOrFailed", "Failed"):
            errs.append(ferr.not_supported(f"{path}.podReplacementPolicy", prp, ["Failed", "TerminatingOrFailed"]))
        elif spec.get("podFailurePolicy") is not None and prp != "Failed":
            errs.append(ferr.not_supported(f"{path}.podReplacementPolicy", prp, ["Failed"]))
    template = spec.get("template") or {}
    errs.extend(pod.validate_pod_template(template, f"{path}.template"))
    rp = (template.get("spec") or {}).get("restartPolicy") or "Always"
    if rp not in ("OnFailure", "Never"):
        errs.append(ferr.not_supported(f"{path}.template.spec.restartPolicy", rp, ["OnFailure", "Never"]))
    elif spec.get("podFailurePolicy") is not None and rp != "Never":
        errs.append(ferr.invalid(f"{path}.template.spec.restartPolicy", rp,
                                 'only "Never" is supported when podFailurePolicy is specified'))
    return errs


def validate_job_spec(spec: dict, path: str = "spec") -> list[FieldError]:
    """ValidateJobSpec: validateJobSpec plus the selector checks."""
    errs = validate_job_spec_common(spec, path)
    sel = spec.get("selector")
    if sel is None:
        errs.append(ferr.required(f"{path}.selector", ""))
    else:
        errs.extend(common.validate_label_selector(sel, f"{path}.selector"))
        if not (sel.get("matchLabels") or {}) and not (sel.get("matchExpressions") or []):
            errs.append(ferr.required(f"{path}.selector", ""))
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
        if not common.selector_matches(sel, labels):
            errs.append(ferr.invalid(f"{path}.template.metadata.labels", labels or {},
                                     "`selector` does not match template `labels`"))
    return errs


def validate_job(obj: Obj) -> list[FieldError]:
    """ValidateJob."""
    errs = common.validate_object_meta(obj, True, "subdomain")
    errs.extend(_validate_generated_selector(obj))
    spec = obj.get("spec") or {}
    errs.extend(validate_job_spec(spec))
    completions = spec.get("completions")
    if spec.get("completionMode") == "Indexed" and isinstance(completions, int) and completions > 0:
        name = (obj.get("metadata") or {}).get("name") or ""
        hostname = f"{name}-{completions - 1}"
        if common.dns1123_label(hostname):
            errs.append(ferr.invalid("metadata.name", name,
                                     f"will not able to create pod with invalid DNS label: {hostname}"))
    return errs


_SCHEDULING_FIELDS = ("nodeSelector", "tolerations", "affinity", "schedulingGates")


def validate_job_update(new: Obj, old: Obj) -> list[FieldError]:
    """ValidateJobSpecUpdate: selector, completions (unless elastic Indexed), template, mode are immutable."""
    ns, os_ = new.get("spec") or {}, old.get("spec") or {}
    errs = validate_job_spec(ns)
    elastic = (ns.get("completionMode") == "Indexed" and ns.get("completions") == ns.get("parallelism")
               and os_.get("completions") == os_.get("parallelism"))
    if not elastic and ns.get("completions") != os_.get("completions"):
        errs.append(ferr.invalid("spec.completions", ns.get("completions"), "field is immutable"))
    errs.extend(immutable_selector(new, old))
    nt, ot = ns.get("template") or {}, os_.get("template") or {}
    if not semantic_equal(nt, ot):
        # a suspended Job that never started may change its scheduling directives and pod metadata
        mutable_ok = ns.get("suspend") and not (old.get("status") or {}).get("startTime")
        if mutable_ok:
            strip = lambda t: {  # noqa: E731
                **t, "metadata": {}, "spec": {k: v for k, v in (t.get("spec") or {}).items() if k not in _SCHEDULING_FIELDS}}
            mutable_ok = semantic_equal(strip(nt), strip(ot))
        if not mutable_ok:
            errs.append(ferr.invalid("spec.template", GoRepr("core.PodTemplateSpec{...}"), "field is immutable"))
    for key in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy", "successPolicy"):
        if not semantic_equal(ns.get(key), os_.get(key)):
            v = ns.get(key)
            errs.append(ferr.invalid(f"spec.{key}", v if isinstance(v, (str, int)) else GoRepr("{...}"),
                                     "field is immutable"))
    return errs


def _has_condition(status: dict, ctype: str) -> bool:
    for c in status.get("conditions") or []:
        if c.get("type") == ctype:
            return c.get("status") == "True"
    return False


def job_status_text(obj: Obj) -> str:
    status = obj.get("status") or {}
    if _has_condition(status, "Complete"):
        return "Complete"
    if _has_condition(status, "Failed"):
        return "Failed"
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    if _has_condition(status, "Suspended"):
        return "Suspended"
    if _has_condition(status, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def job_row(obj: Obj, now: float | None = None) -> list:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    succeeded = status.get("succeeded") or 0
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    else:
        parallelism = spec.get("parallelism") or 0
        completions = f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"
    start = common.parse_time(status.get("startTime"))
    end = common.parse_time(status.get("completionTime"))
    if start is None:
        duration = ""
    elif end is None:
        duration = common.age(status.get("startTime"), now)
    else:
        duration = common.human_duration(end - start)
    names, images = container_cells((spec.get("template") or {}).get("spec"))
    return [job_status_text(obj), completions, duration, common.age((obj.get("metadata") or {}).get("creationTimestamp"), now),
            names, images, common.format_label_selector(spec.get("selector"))]


JOB_COLUMNS = (
    Column("Status", "string", description="Status of the job."),
    Column("Completions", "string", description="The number of pods which reached phase Succeeded."),
    Column("Duration", "string", description="Time required to complete the job."),
    age_column(),
    WIDE_CONTAINERS,
    WIDE_IMAGES,
    Column("Selector", "string", priority=1, description="A label query over pods that should match the pod count."),
)


# ---------------------------------------------------------------------------------------------
# Cron schedules: robfig/cron v3 ParseStandard, with its error texts

_BOUNDS = {
    "minute": (0, 59, None),
    "hour": (0, 23, None),
    "dom": (1, 31, None),
    "month": (1, 12, {m: i + 1 for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}),
    "dow": (0, 6, {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}),
}
_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_GO_DURATION = re.compile(r"^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$")


class CronError(ValueError):
    pass


def _atoi(expr: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", expr):
        raise CronError(f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}": invalid syntax')
    n = int(expr)
    if not -(2 ** 63) <= n < 2 ** 63:
        raise CronError(f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}": value out of range')
    if n < 0:
        raise CronError(f"negative number ({n}) not allowed: {expr}")
    return n


def _int_or_name(expr: str, names: dict | None) -> int:
    if names and expr.lower() in names:
        return names[expr.lower()]
    return _atoi(expr)


def _check_range(expr: str, bounds: tuple) -> None:
    lo, hi, names = bounds
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    single = len(low_high) == 1
    if low_high[0] in ("*", "?"):
        start, end = lo, hi
    else:
        start = _int_or_name(low_high[0], names)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _int_or_name(low_high[1], names)
        else:
            raise CronError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _atoi(range_and_step[1])
        if single:
            end = hi
    else:
        raise CronError(f"too many slashes: {expr}")
    if start < lo:
        raise CronError(f"beginning of range ({start}) below minimum ({lo}): {expr}")
    if end > hi:
        raise CronError(f"end of range ({end}) above maximum ({hi}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")


def parse_cron_standard(spec: str) -> None:
    """Raise CronError with robfig/cron's message when `spec` is not a valid standard schedule."""
    if not spec:
        raise CronError("empty spec string")
    if spec.startswith("TZ=") or spec.startswith("CRON_TZ="):
        i, eq = spec.find(" "), spec.find("=")
        loc = spec[eq + 1:i] if i >= 0 else spec[eq + 1:]
        if not _valid_location(loc):
            raise CronError(f"provided bad location {loc}: unknown time zone {loc}")
        spec = spec[i:].strip() if i >= 0 else ""
    if spec.startswith("@"):
        if spec in _DESCRIPTORS:
            return
        if spec.startswith("@every "):
            d = spec[len("@every "):]
            if not _GO_DURATION.match(d):
                raise CronError(f'failed to parse duration {spec}: time: invalid duration "{d}"')
            return
        raise CronError(f"unrecognized descriptor: {spec}")
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    for value, name in zip(fields, ("minute", "hour", "dom", "month", "dow"), strict=True):
        for expr in [e for e in value.split(",") if e]:
            _check_range(expr, _BOUNDS[name])


def _valid_location(tz: str) -> bool:
    if tz in ("", "UTC", "Local"):
        return True
    try:
        zoneinfo.ZoneInfo(tz)
        return True
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False


_TZ_CHARS = re.compile(r"^[A-Za-z\.\-_0-9+]{1,14}$")


def validate_time_zone(tz: Any, path: str) -> list[FieldError]:
    """validateTimeZone: an explicit IANA name the server's tz database knows."""
    if tz is None:
        return []
    if tz == "":
        return [ferr.invalid(path, tz, "timeZone must be nil or non-empty string")]
    for part in tz.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TZ_CHARS.match(part):
            return [ferr.invalid(path, tz, f"unknown time zone {tz}")]
    errs: list[FieldError] = []
    if tz.lower() == "local":
        errs.append(ferr.invalid(path, tz, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"))
    if tz != "UTC" and not _valid_location(tz):
        errs.append(ferr.invalid(path, tz, f"unknown time zone {tz}"))
    return errs


def validate_schedule(schedule: str, allow_tz: bool, tz: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    try:
        parse_cron_standard(schedule)
    except CronError as e:
        errs.append(ferr.invalid(path, schedule, str(e)))
    if allow_tz and "TZ" in schedule and tz is not None:
        errs.append(ferr.invalid(path, schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"))
    elif not allow_tz and "TZ" in schedule:
        errs.append(ferr.invalid(path, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
    return errs


# ---------------------------------------------------------------------------------------------
# CronJob


def default_cronjob(obj: Obj) -> None:
    """SetDefaults_CronJob; the job template gets pod defaults only (not Job defaults)."""
    spec = spec_of(obj)
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    jt = spec.setdefault("jobTemplate", {})
    pod.default_pod_template(jt.setdefault("spec", {}).setdefault("template", {}))


def validate_cronjob_spec(spec: dict, old_spec: dict | None, path: str = "spec") -> list[FieldError]:
    errs: list[FieldError] = []
    schedule = spec.get("schedule") or ""
    if not schedule:
        errs.append(ferr.required(f"{path}.schedule", ""))
    else:
        allow_tz = old_spec is not None and "TZ" in (old_spec.get("schedule") or "")
        errs.extend(validate_schedule(schedule, allow_tz, spec.get("timeZone"), f"{path}.schedule"))
    if spec.get("startingDeadlineSeconds") is not None:
        errs.extend(common.non_negative(spec["startingDeadlineSeconds"], f"{path}.startingDeadlineSeconds"))
    if old_spec is None or old_spec.get("timeZone") != spec.get("timeZone"):
        errs.extend(validate_time_zone(spec.get("timeZone"), f"{path}.timeZone"))
    cp = spec.get("concurrencyPolicy") or ""
    if not cp:
        errs.append(ferr.required(f"{path}.concurrencyPolicy", ""))
    elif cp not in ("Allow", "Forbid", "Replace"):
        errs.append(ferr.not_supported(f"{path}.concurrencyPolicy", cp, ["Allow", "Forbid", "Replace"]))
    jt_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    jpath = f"{path}.jobTemplate.spec"
    errs.extend(validate_job_spec_common(jt_spec, jpath))
    if jt_spec.get("selector") is not None:
        errs.append(ferr.invalid(f"{jpath}.selector", go_label_selector(jt_spec["selector"]), "`selector` will be auto-generated"))
    if jt_spec.get("manualSelector"):
        errs.append(ferr.not_supported(f"{jpath}.manualSelector", True, ["nil", "false"]))
    for key in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        if spec.get(key) is not None:
            errs.extend(common.non_negative(spec[key], f"{path}.{key}"))
    return errs


def validate_cronjob(obj: Obj) -> list[FieldError]:
    """ValidateCronJobCreate."""
    errs = common.validate_object_meta(obj, True, "subdomain")
    errs.extend(validate_cronjob_spec(obj.get("spec") or {}, None))
    name = (obj.get("metadata") or {}).get("name") or ""
    if len(name) > 52:
        errs.append(ferr.invalid("metadata.name", name, "must be no more than 52 characters"))
    return errs


def validate_cronjob_update(new: Obj, old: Obj) -> list[FieldError]:
    return validate_cronjob_spec(new.get("spec") or {}, old.get("spec") or {})


def prepare_create_reset_status(obj: Obj) -> None:
    obj["status"] = {}


def cronjob_row(obj: Obj, now: float | None = None) -> list:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    last = status.get("lastScheduleTime")
    suspend = spec.get("suspend")
    jt_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    names, images = container_cells((jt_spec.get("template") or {}).get("spec"))
    return [
        spec.get("schedule") or "",
        spec.get("timeZone") if spec.get("timeZone") is not None else "<none>",
        "<unset>" if suspend is None else ("True" if suspend else "False"),
        len(status.get("active") or []),
        common.age(last, now) if last else "<none>",
        common.age((obj.get("metadata") or {}).get("creationTimestamp"), now),
        names,
        images,
        common.format_label_selector(jt_spec.get("selector")),
    ]


CRONJOB_COLUMNS = (
    Column("Schedule", "string", description="The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
    Column("Timezone", "string", description="The time zone name for the given schedule, see "
           "https://en.wikipedia.org/wiki/List_of_tz_database_time_zones."),
    Column("Suspend", "boolean", description="This flag tells the controller to suspend subsequent executions, it does "
           "not apply to already started executions.  Defaults to false."),
    Column("Active", "integer", description="A list of pointers to currently running jobs."),
    Column("Last Schedule", "string", description="Information when was the last time the job was successfully "
           "scheduled."),
    age_column(),
    WIDE_CONTAINERS,
    WIDE_IMAGES,
    Column("Selector", "string", priority=1, description="A label query over pods that should match the pod count."),
)


def register(reg: Registry) -> None:
    g, v = "batch", "v1"
    reg.register(Resource(
        group=g, version=v, kind="Job", plural="jobs", namespaced=True, categories=("all",),
        subresources=("status",), definition=definition(g, v, "Job"), columns=JOB_COLUMNS,
        row=lambda o: job_row(o), default=default_job, validate=validate_job, validate_update=validate_job_update,
        prepare_create=prepare_create_job, tracks_generation=True,
    ))
    reg.register(Resource(
        group=g, version=v, kind="CronJob", plural="cronjobs", namespaced=True, short_names=("cj",),
        categories=("all",), subresources=("status",), definition=definition(g, v, "CronJob"),
        columns=CRONJOB_COLUMNS, row=lambda o: cronjob_row(o), default=default_cronjob, validate=validate_cronjob,
        validate_update=validate_cronjob_update, prepare_create=prepare_create_reset_status, tracks_generation=True,
    ))

