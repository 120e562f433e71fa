"""PodSpec defaulting and validation, pod QoS, and kubectl's pod columns.

Shared by every kind that embeds a pod template (Deployment, Job, ...). Mirrors upstream's
SetDefaults_PodSpec/Container/Probe/Volume (pkg/apis/core/v1/defaults.go), ValidatePodSpec and
ValidatePodUpdate (pkg/apis/core/validation/validation.go) and printPod
(pkg/printers/internalversion/printers.go), with their wording.
"""

from __future__ import annotations

import copy
import re
from decimal import ROUND_CEILING, Decimal
from typing import Any

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common
from kubelite.api.kinds.common import (
    age,
    canonical_quantity,
    dns1123_label,
    dns1123_subdomain,
    parse_quantity,
    parse_time,
    qualified_name,
)

# ---------------------------------------------------------------------------------------------
# Defaulting

DEFAULT_TERMINATION_GRACE_PERIOD = 30
DEFAULT_MODE = 0o644  # 420: secret/configMap/downwardAPI/projected volumes

_TOLERATION_NOT_READY = "node.kubernetes.io/not-ready"
_TOLERATION_UNREACHABLE = "node.kubernetes.io/unreachable"


def image_tag(image: str) -> str:
    """The tag of an image reference as parsers.ParseImageName sees it ("latest" when absent, "" with a digest)."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.rsplit(":", 1)[1]
    return "" if digest else "latest"


def _default_resource_list(rl: Any) -> None:
    """SetDefaults_ResourceList: quantities rounded up to milli and written in canonical form."""
    if not isinstance(rl, dict):
        return
    for k, v in list(rl.items()):
        try:
            q = parse_quantity(v)
        except ValueError:
            continue  # validation reports it
        fmt = common.quantity_format(v) if isinstance(v, str) else "DecimalSI"
        q = q.quantize(Decimal("0.001"), rounding=ROUND_CEILING) if q.as_tuple().exponent < -3 else q
        rl[k] = common.format_quantity(q, fmt)


def _default_handler(h: Any) -> None:
    if not isinstance(h, dict):
        return
    hg = h.get("httpGet")
    if isinstance(hg, dict):
        if not hg.get("path"):
            hg["path"] = "/"
        if not hg.get("scheme"):
            hg["scheme"] = "HTTP"


def _default_probe(p: Any) -> None:
    """SetDefaults_Probe."""
    if not isinstance(p, dict):
        return
    for key, val in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1), ("failureThreshold", 3)):
        if not p.get(key):
            p[key] = val
    _default_handler(p)


def default_container(c: dict) -> None:
    """SetDefaults_Container plus the declarative defaults of its nested types."""
    if not isinstance(c, dict):
        return
    if not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = "Always" if image_tag(c.get("image") or "") == "latest" else "IfNotPresent"
    if not c.get("terminationMessagePath"):
        c["terminationMessagePath"] = "/dev/termination-log"
    if not c.get("terminationMessagePolicy"):
        c["terminationMessagePolicy"] = "File"
    for p in c.get("ports") or []:
        if isinstance(p, dict) and not p.get("protocol"):
            p["protocol"] = "TCP"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(probe))
    lc = c.get("lifecycle")
    if isinstance(lc, dict):
        _default_handler(lc.get("postStart"))
        _default_handler(lc.get("preStop"))
    for e in c.get("env") or []:
        vf = e.get("valueFrom") if isinstance(e, dict) else None
        if isinstance(vf, dict) and isinstance(vf.get("fieldRef"), dict) and not vf["fieldRef"].get("apiVersion"):
            vf["fieldRef"]["apiVersion"] = "v1"
    res = c.get("resources")
    if isinstance(res, dict):
        _default_resource_list(res.get("limits"))
        _default_resource_list(res.get("requests"))


_VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs", "iscsi",
    "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "downwardAPI", "fc",
    "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "projected",
    "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral", "image",
)


def _default_items_field_refs(items: Any) -> None:
    for it in items or []:
        if isinstance(it, dict) and isinstance(it.get("fieldRef"), dict) and not it["fieldRef"].get("apiVersion"):
            it["fieldRef"]["apiVersion"] = "v1"


def default_volume(v: dict) -> None:
    """SetDefaults_Volume and the volume sources' defaults (modes 0644, hostPath type "", ...)."""
    if not isinstance(v, dict):
        return
    if not any(v.get(s) is not None for s in _VOLUME_SOURCES):
        v["emptyDir"] = {}
    for src in ("secret", "configMap", "downwardAPI", "projected"):
        s = v.get(src)
        if isinstance(s, dict) and s.get("defaultMode") is None:
            s["defaultMode"] = DEFAULT_MODE
    if isinstance(v.get("hostPath"), dict) and v["hostPath"].get("type") is None:
        v["hostPath"]["type"] = ""
    if isinstance(v.get("downwardAPI"), dict):
        _default_items_field_refs(v["downwardAPI"].get("items"))
    proj = v.get("projected")
    if isinstance(proj, dict):
        for src in proj.get("sources") or []:
            if not isinstance(src, dict):
                continue
            sat = src.get("serviceAccountToken")
            if isinstance(sat, dict) and sat.get("expirationSeconds") is None:
                sat["expirationSeconds"] = 3600
            if isinstance(src.get("downwardAPI"), dict):
                _default_items_field_refs(src["downwardAPI"].get("items"))
    eph = v.get("ephemeral")
    if isinstance(eph, dict) and isinstance(eph.get("volumeClaimTemplate"), dict):
        spec = eph["volumeClaimTemplate"].setdefault("spec", {})
        if isinstance(spec, dict) and not spec.get("volumeMode"):
            spec["volumeMode"] = "Filesystem"


def default_pod_spec(spec: dict) -> None:
    """SetDefaults_PodSpec and everything nested, for Pods and pod templates alike."""
    if not isinstance(spec, dict):
        return
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = DEFAULT_TERMINATION_GRACE_PERIOD
    if not spec.get("schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    # v1 conversion: the deprecated serviceAccount mirrors serviceAccountName
    if not spec.get("serviceAccountName") and spec.get("serviceAccount"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    if spec.get("serviceAccountName"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            default_container(c)
    for v in spec.get("volumes") or []:
        default_volume(v)


def default_pod_template(template: dict) -> None:
    """Defaults for a PodTemplateSpec: only the spec is defaulted."""
    if not isinstance(template, dict):
        return
    spec = template.get("spec")
    if spec is None:
        spec = template["spec"] = {}
    default_pod_spec(spec)


def _has_toleration_for(tolerations: list, key: str) -> bool:
    for t in tolerations:
        if not isinstance(t, dict):
            continue
        if t.get("effect") not in (None, "", "NoExecute"):
            continue
        if t.get("key") == key or (not t.get("key") and t.get("operator") == "Exists"):
            return True
    return False


def default_pod(pod: dict) -> None:
    """SetDefaults_Pod plus what two admission plugins add to every pod upstream.

    ServiceAccount admission (serviceAccountName "default") and DefaultTolerationSeconds (not-ready
    and unreachable tolerated for 300s).
    """
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        spec = pod["spec"] = {}
    default_pod_spec(spec)
    for key in ("containers", "initContainers"):
        for c in spec.get(key) or []:
            res = c.get("resources") if isinstance(c, dict) else None
            if isinstance(res, dict) and isinstance(res.get("limits"), dict):
                req = res.setdefault("requests", {}) or {}
                res["requests"] = req
                for k, v in res["limits"].items():
                    req.setdefault(k, v)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork"):
        for key in ("containers", "initContainers"):
            for c in spec.get(key) or []:
                for p in (c or {}).get("ports") or []:
                    if isinstance(p, dict) and not p.get("hostPort"):
                        p["hostPort"] = p.get("containerPort")
    if not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = "default"
        spec["serviceAccount"] = "default"
    tolerations = spec.get("tolerations")
    if not isinstance(tolerations, list):
        tolerations = []
    added = list(tolerations)
    for key in (_TOLERATION_NOT_READY, _TOLERATION_UNREACHABLE):
        if not _has_toleration_for(tolerations, key):
            added.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
    spec["tolerations"] = added
    # spec.priority and spec.preemptionPolicy are the Priority admission plugin's (it reads PriorityClasses)


# ---------------------------------------------------------------------------------------------
# QoS


def _nonzero(rl: Any, name: str) -> bool:
    if not isinstance(rl, dict) or name not in rl:
        return False
    try:
        return parse_quantity(rl[name]) > 0
    except ValueError:
        return False


def compute_qos(spec: dict) -> str:
    """qos.ComputePodQOS: Guaranteed, Burstable or BestEffort from cpu/memory requests and limits."""
    containers = list(spec.get("initContainers") or []) + list(spec.get("containers") or [])
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    guaranteed = True
    for c in containers:
        res = (c or {}).get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        for name in ("cpu", "memory"):
            if _nonzero(req, name):
                requests[name] = requests.get(name, 0) + parse_quantity(req[name])
            if _nonzero(lim, name):
                limits[name] = limits.get(name, 0) + parse_quantity(lim[name])
        if not (_nonzero(lim, "cpu") and _nonzero(lim, "memory")):
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and set(requests) == set(limits) and all(requests[k] == limits[k] for k in requests):
        return "Guaranteed"
    return "Burstable"


# ---------------------------------------------------------------------------------------------
# Validation helpers


def _label_errs(value: str, path: str) -> list[FieldError]:
    return [ferr.invalid(path, value, m) for m in dns1123_label(value)]


def _subdomain_errs(value: str, path: str) -> list[FieldError]:
    return [ferr.invalid(path, value, m) for m in dns1123_subdomain(value)]


def _qname_errs(value: str, path: str) -> list[FieldError]:
    return [ferr.invalid(path, value, m) for m in qualified_name(value)]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _nonneg(value: Any, path: str) -> list[FieldError]:
    if _is_int(value) and value < 0:
        return [ferr.invalid(path, value, "must be greater than or equal to 0")]
    return []


_FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"


def _mode_errs(mode: Any, path: str) -> list[FieldError]:
    if _is_int(mode) and (mode > 0o777 or mode < 0):
        return [ferr.invalid(path, mode, _FILE_MODE_MSG)]
    return []


def _path_no_backsteps(p: str, path: str) -> list[FieldError]:
    if ".." in p.replace("\\", "/").split("/"):
        return [ferr.invalid(path, p, "must not contain '..'")]
    return []


def _local_descending_path(p: str, path: str) -> list[FieldError]:
    errs = []
    if p.startswith("/"):
        errs.append(ferr.invalid(path, p, "must be a relative path"))
    return errs + _path_no_backsteps(p, path)


def _local_non_reserved_path(p: str, path: str) -> list[FieldError]:
    errs = _local_descending_path(p, path)
    if p.startswith("..") and not p.startswith("../"):
        errs.append(ferr.invalid(path, p, "must not start with '..'"))
    return errs


def _key_to_path(kp: dict, path: str) -> list[FieldError]:
    errs = []
    if not kp.get("key"):
        errs.append(ferr.required(f"{path}.key"))
    if not kp.get("path"):
        errs.append(ferr.required(f"{path}.path"))
    errs += _local_non_reserved_path(kp.get("path") or "", f"{path}.path")
    errs += _mode_errs(kp.get("mode"), f"{path}.mode")
    return errs


_HOST_PATH_TYPES = ["", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"]


def _volume_source(v: dict, path: str) -> list[FieldError]:
    """validateVolumeSource for the sources people use; others are only counted."""
    errs: list[FieldError] = []
    n = 0
    order = ["emptyDir", "hostPath", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret", "nfs",
             "iscsi", "glusterfs", "flocker", "persistentVolumeClaim", "rbd", "cinder", "cephFS", "quobyte",
             "downwardAPI", "fc", "flexVolume", "configMap", "azureFile", "vsphereVolume", "photonPersistentDisk",
             "portworxVolume", "azureDisk", "storageos", "projected", "scaleIO", "csi", "ephemeral", "image"]
    for src in order:
        key = "cephfs" if src == "cephFS" else src
        s = v.get(key)
        if s is None:
            continue
        if n > 0 and src != "emptyDir":
            errs.append(ferr.forbidden(f"{path}.{'downwarAPI' if src == 'downwardAPI' else src}",
                                       "may not specify more than 1 volume type"))
            continue
        n += 1
        s = s if isinstance(s, dict) else {}
        p = f"{path}.{src}"
        if src == "emptyDir":
            sl = s.get("sizeLimit")
            if sl is not None:
                try:
                    if parse_quantity(sl) < 0:
                        errs.append(ferr.forbidden(f"{p}.sizeLimit", "SizeLimit field must be a valid resource quantity"))
                except ValueError:
                    pass
        elif src == "hostPath":
            if not s.get("path"):
                errs.append(ferr.required(f"{p}.path"))
            else:
                errs += _path_no_backsteps(s["path"], f"{p}.path")
                t = s.get("type")
                if t is not None and t not in _HOST_PATH_TYPES:
                    errs.append(ferr.not_supported(f"{p}.type", t, _HOST_PATH_TYPES))
        elif src == "secret":
            if not s.get("secretName"):
                errs.append(ferr.required(f"{p}.secretName"))
            errs += _mode_errs(s.get("defaultMode"), f"{p}.defaultMode")
            for i, kp in enumerate(s.get("items") or []):
                errs += _key_to_path(kp, f"{p}.items[{i}]")
        elif src == "configMap":
            if not s.get("name"):
                errs.append(ferr.required(f"{p}.name"))
            errs += _mode_errs(s.get("defaultMode"), f"{p}.defaultMode")
            for i, kp in enumerate(s.get("items") or []):
                errs += _key_to_path(kp, f"{p}.items[{i}]")
        elif src == "persistentVolumeClaim":
            if not s.get("claimName"):
                errs.append(ferr.required(f"{p}.claimName"))
        elif src == "nfs":
            if not s.get("server"):
                errs.append(ferr.required(f"{p}.server"))
            if not s.get("path"):
                errs.append(ferr.required(f"{p}.path"))
            if not (s.get("path") or "").startswith("/"):
                errs.append(ferr.invalid(f"{p}.path", s.get("path") or "", "must be an absolute path"))
        elif src == "downwardAPI":
            errs += _mode_errs(s.get("defaultMode"), f"{p}.defaultMode")
            for f in s.get("items") or []:
                if not f.get("path"):
                    errs.append(ferr.required(f"{p}.path"))
                errs += _local_non_reserved_path(f.get("path") or "", f"{p}.path")
                if not f.get("fieldRef") and not f.get("resourceFieldRef"):
                    errs.append(ferr.required(p, "one of fieldRef and resourceFieldRef is required"))
        elif src == "projected":
            errs += _mode_errs(s.get("defaultMode"), f"{p}.defaultMode")
            for i, ps in enumerate(s.get("sources") or []):
                sp = f"{p}.sources[{i}]"
                kinds = [k for k in ("secret", "configMap", "downwardAPI", "serviceAccountToken", "clusterTrustBundle")
                         if ps.get(k) is not None]
                if len(kinds) > 1:
                    errs.append(ferr.forbidden(sp, "may not specify more than 1 volume type"))
                sat = ps.get("serviceAccountToken")
                if isinstance(sat, dict):
                    exp = sat.get("expirationSeconds")
                    if _is_int(exp) and exp < 600:
                        errs.append(ferr.invalid(f"{sp}.serviceAccountToken.expirationSeconds", exp,
                                                 "may not specify a duration less than 10 minutes"))
                    if not sat.get("path"):
                        errs.append(ferr.required(f"{p}.path"))
        elif src == "csi":
            if not s.get("driver"):
                errs.append(ferr.required(f"{p}.driver"))
        elif src == "ephemeral":
            if not s.get("volumeClaimTemplate"):
                errs.append(ferr.required(f"{p}.volumeClaimTemplate"))
    if n == 0:
        errs.append(ferr.required(path, "must specify a volume type"))
    return errs


def _validate_volumes(volumes: list, path: str) -> tuple[dict[str, dict], list[FieldError]]:
    errs: list[FieldError] = []
    names: dict[str, dict] = {}
    for i, v in enumerate(volumes or []):
        if not isinstance(v, dict):
            continue
        p = f"{path}[{i}]"
        el = _volume_source(v, p)
        name = v.get("name") or ""
        if not name:
            el.append(ferr.required(f"{p}.name"))
        else:
            el += _label_errs(name, f"{p}.name")
        if name in names:
            el.append(ferr.duplicate(f"{p}.name", name))
        if not el:
            names[name] = v
        else:
            errs += el
    return names, errs


_PROTOCOLS = ["SCTP", "TCP", "UDP"]


def _validate_container_ports(ports: list, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, p in enumerate(ports or []):
        if not isinstance(p, dict):
            continue
        ip = f"{path}[{i}]"
        name = p.get("name") or ""
        if name:
            msgs = common.port_name(name)
            if msgs:
                errs += [ferr.invalid(f"{ip}.name", name, m) for m in msgs]
            elif name in names:
                errs.append(ferr.duplicate(f"{ip}.name", name))
            else:
                names.add(name)
        cp = p.get("containerPort")
        if not cp:
            errs.append(ferr.required(f"{ip}.containerPort"))
        else:
            errs += [ferr.invalid(f"{ip}.containerPort", cp, m) for m in common.port_num(cp)]
        hp = p.get("hostPort")
        if hp:
            errs += [ferr.invalid(f"{ip}.hostPort", hp, m) for m in common.port_num(hp)]
        proto = p.get("protocol") or ""
        if not proto:
            errs.append(ferr.required(f"{ip}.protocol"))
        elif proto not in _PROTOCOLS:
            errs.append(ferr.not_supported(f"{ip}.protocol", proto, _PROTOCOLS))
    return errs


_RELAXED_ENV_MSG = "a valid environment variable name must consist only of printable ASCII characters other than '='"


def _env_name_errs(name: str) -> list[str]:
    """IsRelaxedEnvVarName (RelaxedEnvironmentVariableValidation is on by default in 1.32)."""
    errs = []
    if not name:
        errs.append("environment variable name must be non-empty")
    for ch in name:
        if ord(ch) > 127 or not ch.isprintable() or ch == "=":
            errs.append(_RELAXED_ENV_MSG)
            break
    return errs


_ENV_FIELD_PATHS = ["metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                    "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"]
_RESOURCE_FIELD_PATHS = ["limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu",
                         "requests.ephemeral-storage", "requests.memory"]
_SUBSCRIPT_RE = re.compile(r"^(metadata\.(?:labels|annotations))\['(.*)'\]$")


def _key_selector(s: dict, path: str) -> list[FieldError]:
    errs = [ferr.invalid(f"{path}.name", s.get("name") or "", m) for m in dns1123_subdomain(s.get("name") or "")]
    key = s.get("key") or ""
    if not key:
        errs.append(ferr.required(f"{path}.key"))
    else:
        errs += [ferr.invalid(f"{path}.key", key, m) for m in common.config_map_key(key)]
    return errs


def _validate_env(env: list, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, ev in enumerate(env or []):
        if not isinstance(ev, dict):
            continue
        ip = f"{path}[{i}]"
        name = ev.get("name") or ""
        if not name:
            errs.append(ferr.required(f"{ip}.name"))
        else:
            errs += [ferr.invalid(f"{ip}.name", name, m) for m in _env_name_errs(name)]
        vf = ev.get("valueFrom")
        if vf is None:
            continue
        vp = f"{ip}.valueFrom"
        n = 0
        if isinstance(vf.get("fieldRef"), dict):
            n += 1
            fr = vf["fieldRef"]
            if not fr.get("apiVersion"):
                errs.append(ferr.required(f"{vp}.fieldRef.apiVersion"))
            elif not fr.get("fieldPath"):
                errs.append(ferr.required(f"{vp}.fieldRef.fieldPath"))
            else:
                fp = fr["fieldPath"]
                m = _SUBSCRIPT_RE.match(fp)
                if m:
                    sub = m.group(2).lower() if m.group(1).endswith("annotations") else m.group(2)
                    errs += _qname_errs(sub, f"{vp}.fieldRef")
                elif fp not in _ENV_FIELD_PATHS:
                    errs.append(ferr.not_supported(f"{vp}.fieldRef.fieldPath", fp, _ENV_FIELD_PATHS))
        if isinstance(vf.get("resourceFieldRef"), dict):
            n += 1
            rf = vf["resourceFieldRef"]
            r = rf.get("resource") or ""
            if not r:
                errs.append(ferr.required(f"{vp}.resourceFieldRef.resource"))
            elif r not in _RESOURCE_FIELD_PATHS and not r.startswith(("requests.hugepages-", "limits.hugepages-")):
                errs.append(ferr.not_supported(f"{vp}.resourceFieldRef.resource", r, _RESOURCE_FIELD_PATHS))
        if isinstance(vf.get("configMapKeyRef"), dict):
            n += 1
            errs += _key_selector(vf["configMapKeyRef"], f"{vp}.configMapKeyRef")
        if isinstance(vf.get("secretKeyRef"), dict):
            n += 1
            errs += _key_selector(vf["secretKeyRef"], f"{vp}.secretKeyRef")
        if n == 0:
            errs.append(ferr.invalid(vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
        elif ev.get("value"):
            errs.append(ferr.invalid(vp, "", "may not be specified when `value` is not empty"))
        elif n > 1:
            errs.append(ferr.invalid(vp, "", "may not have more than one field specified at a time"))
    return errs


def _validate_env_from(env_from: list, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, ev in enumerate(env_from or []):
        if not isinstance(ev, dict):
            continue
        ip = f"{path}[{i}]"
        if ev.get("prefix"):
            errs += [ferr.invalid(f"{ip}.prefix", ev["prefix"], m) for m in _env_name_errs(ev["prefix"])]
        n = 0
        for key in ("configMapRef", "secretRef"):
            ref = ev.get(key)
            if isinstance(ref, dict):
                n += 1
                rname = ref.get("name") or ""
                if not rname:
                    errs.append(ferr.required(f"{ip}.{key}.name"))
                else:
                    errs += [ferr.invalid(f"{ip}.{key}.name", rname, m)
                             for m in common.name_validator("subdomain")(rname, True)]
        if n == 0:
            errs.append(ferr.invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif n > 1:
            errs.append(ferr.invalid(path, "", "may not have more than one field specified at a time"))
    return errs


def _validate_volume_mounts(mounts: list, devices: dict, volumes: dict, container: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    points: set[str] = set()
    for i, m in enumerate(mounts or []):
        if not isinstance(m, dict):
            continue
        ip = f"{path}[{i}]"
        name, mp = m.get("name") or "", m.get("mountPath") or ""
        if not name:
            errs.append(ferr.required(f"{ip}.name"))
        if name not in volumes:
            errs.append(ferr.not_found(f"{ip}.name", name))
        if not mp:
            errs.append(ferr.required(f"{ip}.mountPath"))
        if mp in points:
            errs.append(ferr.invalid(f"{ip}.mountPath", mp, "must be unique"))
        points.add(mp)
        if name in devices:
            errs.append(ferr.invalid(f"{ip}.name", name, "must not already exist in volumeDevices"))
        if mp in devices.values():
            errs.append(ferr.invalid(f"{ip}.mountPath", mp, "must not already exist as a path in volumeDevices"))
        if m.get("subPath"):
            errs += _local_descending_path(m["subPath"], f"{path}.subPath")
        if m.get("subPathExpr"):
            if m.get("subPath"):
                errs.append(ferr.invalid(f"{ip}.subPathExpr", m["subPathExpr"], "subPathExpr and subPath are mutually exclusive"))
            errs += _local_descending_path(m["subPathExpr"], f"{path}.subPathExpr")
        prop = m.get("mountPropagation")
        if prop is not None:
            supported = ["Bidirectional", "HostToContainer", "None"]
            if prop not in supported:
                errs.append(ferr.not_supported(f"{path}.mountPropagation", prop, supported))
            privileged = ((container.get("securityContext") or {}).get("privileged")) is True
            if prop == "Bidirectional" and not privileged:
                errs.append(ferr.forbidden(f"{path}.mountPropagation",
                                           "Bidirectional mount propagation is available only to privileged containers"))
    return errs


def _port_num_or_name(port: Any, path: str) -> list[FieldError]:
    if _is_int(port):
        return [ferr.invalid(path, port, m) for m in common.port_num(port)]
    if isinstance(port, str):
        return [ferr.invalid(path, port, m) for m in common.port_name(port)]
    return []


def _validate_handler(h: dict, grace: Any, path: str, probe: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    n = 0
    kinds = ("exec", "httpGet", "tcpSocket", "grpc") if probe else ("exec", "httpGet", "tcpSocket", "sleep")
    for k in kinds:
        a = h.get(k)
        if a is None:
            continue
        if n > 0:
            errs.append(ferr.forbidden(f"{path}.{k}", "may not specify more than 1 handler type"))
            continue
        n += 1
        a = a if isinstance(a, dict) else {}
        if k == "exec":
            if not a.get("command"):
                errs.append(ferr.required(f"{path}.exec.command"))
        elif k == "httpGet":
            if not a.get("path"):
                errs.append(ferr.required(f"{path}.httpGet.path"))
            errs += _port_num_or_name(a.get("port"), f"{path}.httpGet.port")
            if a.get("scheme") not in ("HTTP", "HTTPS"):
                errs.append(ferr.not_supported(f"{path}.httpGet.scheme", a.get("scheme") or "", ["HTTP", "HTTPS"]))
            for hdr in a.get("httpHeaders") or []:
                hn = (hdr or {}).get("name") or ""
                if not re.fullmatch("[-A-Za-z0-9]+", hn):
                    errs.append(ferr.invalid(f"{path}.httpGet.httpHeaders", hn, common.regex_error(
                        "a valid HTTP header must consist of alphanumeric characters or '-'", "[-A-Za-z0-9]+", "X-Header-Name")))
        elif k == "tcpSocket":
            errs += _port_num_or_name(a.get("port"), f"{path}.tcpSocket.port")
        elif k == "grpc":
            errs += _port_num_or_name(a.get("port") or 0, f"{path}.grpc.port")
        elif k == "sleep":
            secs = a.get("seconds") or 0
            if _is_int(grace) and (secs <= 0 or secs > grace):
                errs.append(ferr.invalid(f"{path}.sleep", secs, "must be greater than 0 and less than "
                                         f"terminationGracePeriodSeconds ({grace})"))
    if n == 0:
        errs.append(ferr.required(path, "must specify a handler type"))
    return errs


def _validate_probe(p: Any, grace: Any, path: str, kind: str) -> list[FieldError]:
    if not isinstance(p, dict):
        return []
    errs = _validate_handler(p, grace, path, probe=True)
    for f in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        errs += _nonneg(p.get(f), f"{path}.{f}")
    tgps = p.get("terminationGracePeriodSeconds")
    if _is_int(tgps) and tgps <= 0:
        errs.append(ferr.invalid(f"{path}.terminationGracePeriodSeconds", tgps, "must be greater than 0"))
    if kind in ("liveness", "startup") and p.get("successThreshold", 1) != 1:
        errs.append(ferr.invalid(f"{path}.successThreshold", p.get("successThreshold"), "must be 1"))
    if kind == "readiness" and tgps is not None:
        errs.append(ferr.invalid(f"{path}.terminationGracePeriodSeconds", tgps, "must not be set for readinessProbes"))
    return errs


def _validate_lifecycle(lc: Any, grace: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if isinstance(lc, dict):
        for k in ("postStart", "preStop"):
            if isinstance(lc.get(k), dict):
                errs += _validate_handler(lc[k], grace, f"{path}.{k}", probe=False)
    return errs


_STANDARD_CONTAINER_RESOURCES = {"cpu", "memory", "ephemeral-storage"}
_STANDARD_RESOURCES = {
    "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory", "requests.ephemeral-storage",
    "limits.cpu", "limits.memory", "limits.ephemeral-storage", "pods", "resourcequotas", "services",
    "replicationcontrollers", "secrets", "persistentvolumeclaims", "storage", "requests.storage",
    "services.nodeports", "services.loadbalancers", "configmaps",
}
_INTEGER_RESOURCES = {"pods", "resourcequotas", "services", "replicationcontrollers", "secrets", "configmaps",
                      "persistentvolumeclaims", "services.nodeports", "services.loadbalancers"}


def is_hugepages(name: str) -> bool:
    return name.startswith("hugepages-")


def is_native_resource(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def is_overcommit_allowed(name: str) -> bool:
    return is_native_resource(name) and not is_hugepages(name)


def is_extended_resource(name: str) -> bool:
    if is_native_resource(name) or name.startswith("requests."):
        return False
    return not qualified_name("requests." + name)


def is_standard_resource_name(name: str) -> bool:
    return name in _STANDARD_RESOURCES or is_hugepages(name) or name.startswith("requests.hugepages-")


def is_integer_resource(name: str) -> bool:
    return name in _INTEGER_RESOURCES or name.startswith("count/") or is_extended_resource(name)


def validate_resource_name(name: str, path: str) -> list[FieldError]:
    """validateResourceName: qualified, and standard when unprefixed."""
    errs = [ferr.invalid(path, name, m) for m in qualified_name(name)]
    if errs:
        return errs
    if "/" not in name and not is_standard_resource_name(name):
        errs.append(ferr.invalid(path, name, "must be a standard resource type or fully qualified"))
    return errs


def _container_resource_name(name: str, path: str) -> list[FieldError]:
    errs = validate_resource_name(name, path)
    if "/" not in name:
        if name not in _STANDARD_CONTAINER_RESOURCES and not is_hugepages(name):
            errs.append(ferr.invalid(path, name, "must be a standard resource for containers"))
    elif not is_native_resource(name) and not is_extended_resource(name):
        errs.append(ferr.invalid(path, name, "doesn't follow extended resource name standard"))
    return errs


def validate_quantity_value(name: str, value: Any, path: str) -> list[FieldError]:
    """ValidateResourceQuantityValue: parseable, non-negative, integral for integer resources."""
    try:
        q = parse_quantity(value)
    except ValueError as e:
        return [ferr.invalid(path, value, str(e))]
    errs = []
    if q < 0:
        errs.append(ferr.invalid(path, canonical_quantity(value), "must be greater than or equal to 0"))
    if is_integer_resource(name) and (q * 1000) % 1000 != 0:
        errs.append(ferr.invalid(path, canonical_quantity(value), "must be an integer"))
    return errs


def validate_resource_requirements(res: Any, path: str) -> list[FieldError]:
    """ValidateResourceRequirements: names, quantities, requests <= limits."""
    errs: list[FieldError] = []
    if not isinstance(res, dict):
        return errs
    limits = res.get("limits") or {}
    requests = res.get("requests") or {}
    lim_cpu_mem = req_cpu_mem = lim_huge = req_huge = False
    for name in sorted(limits):
        fp = f"{path}.limits[{name}]"
        errs += _container_resource_name(name, fp)
        errs += validate_quantity_value(name, limits[name], fp)
        lim_huge |= is_hugepages(name)
        lim_cpu_mem |= name in ("cpu", "memory")
    for name in sorted(requests):
        fp = f"{path}.requests[{name}]"
        errs += _container_resource_name(name, fp)
        qerrs = validate_quantity_value(name, requests[name], fp)
        errs += qerrs
        if name in limits and not qerrs:
            try:
                rq, lq = parse_quantity(requests[name]), parse_quantity(limits[name])
            except ValueError:
                continue
            rs, ls = canonical_quantity(requests[name]), canonical_quantity(limits[name])
            if rq != lq and not is_overcommit_allowed(name):
                errs.append(ferr.invalid(f"{path}.requests", rs, f"must be equal to {name} limit of {ls}"))
            elif rq > lq:
                errs.append(ferr.invalid(f"{path}.requests", rs, f"must be less than or equal to {name} limit of {ls}"))
        elif name not in limits and not is_overcommit_allowed(name):
            errs.append(ferr.required(f"{path}.limits", "Limit must be set for non overcommitable resources"))
        req_huge |= is_hugepages(name)
        req_cpu_mem |= name in ("cpu", "memory")
    if not lim_cpu_mem and not req_cpu_mem and (lim_huge or req_huge):
        errs.append(ferr.forbidden(path, "HugePages require cpu or memory"))
    return errs


def _validate_security_context(sc: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(sc, dict):
        return errs
    for f in ("runAsUser", "runAsGroup"):
        v = sc.get(f)
        if _is_int(v) and not 0 <= v <= 0xFFFFFFFF:
            errs.append(ferr.invalid(f"{path}.{f}", v, common.inclusive_range_error(0, 0xFFFFFFFF)))
    pm = sc.get("procMount")
    if pm is not None and pm not in ("Default", "Unmasked"):
        errs.append(ferr.not_supported(f"{path}.procMount", pm, ["Default", "Unmasked"]))
    if sc.get("allowPrivilegeEscalation") is False and sc.get("privileged") is True:
        errs.append(ferr.invalid(path, sc, "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))
    errs += _seccomp(sc.get("seccompProfile"), f"{path}.seccompProfile")
    return errs


def _seccomp(sp: Any, path: str) -> list[FieldError]:
    if not isinstance(sp, dict):
        return []
    t = sp.get("type") or ""
    supported = ["Localhost", "RuntimeDefault", "Unconfined"]
    if not t:
        return [ferr.required(f"{path}.type", "type is required when seccompProfile is set")]
    if t not in supported:
        return [ferr.not_supported(f"{path}.type", t, supported)]
    if t == "Localhost" and sp.get("localhostProfile") is None:
        return [ferr.required(f"{path}.localhostProfile", "must be set when seccomp type is Localhost")]
    if t != "Localhost" and sp.get("localhostProfile") is not None:
        return [ferr.invalid(f"{path}.localhostProfile", sp, "can only be set when seccomp type is Localhost")]
    return []


_PULL_POLICIES = ["Always", "IfNotPresent", "Never"]


def _validate_container_common(c: dict, volumes: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = c.get("name") or ""
    if not name:
        errs.append(ferr.required(f"{path}.name"))
    else:
        errs += _label_errs(name, f"{path}.name")
    if not c.get("image"):
        errs.append(ferr.required(f"{path}.image"))
    tmp = c.get("terminationMessagePolicy") or ""
    if not tmp:
        errs.append(ferr.required(f"{path}.terminationMessagePolicy"))
    elif tmp not in ("File", "FallbackToLogsOnError"):
        errs.append(ferr.not_supported(f"{path}.terminationMessagePolicy", tmp, ["File", "FallbackToLogsOnError"]))
    devices = {d.get("name"): d.get("devicePath") for d in c.get("volumeDevices") or [] if isinstance(d, dict)}
    errs += _validate_container_ports(c.get("ports") or [], f"{path}.ports")
    errs += _validate_env(c.get("env") or [], f"{path}.env")
    errs += _validate_env_from(c.get("envFrom") or [], f"{path}.envFrom")
    errs += _validate_volume_mounts(c.get("volumeMounts") or [], devices, volumes, c, f"{path}.volumeMounts")
    ipp = c.get("imagePullPolicy") or ""
    if not ipp:
        errs.append(ferr.required(f"{path}.imagePullPolicy"))
    elif ipp not in _PULL_POLICIES:
        errs.append(ferr.not_supported(f"{path}.imagePullPolicy", ipp, _PULL_POLICIES))
    errs += validate_resource_requirements(c.get("resources"), f"{path}.resources")
    errs += _validate_security_context(c.get("securityContext"), f"{path}.securityContext")
    return errs


def _host_port_conflicts(containers: list, path: str) -> list[FieldError]:
    seen: set[str] = set()
    errs: list[FieldError] = []
    for ci, c in enumerate(containers):
        for pi, p in enumerate((c or {}).get("ports") or []):
            hp = (p or {}).get("hostPort")
            if not hp:
                continue
            key = f"{p.get('protocol') or ''}/{p.get('hostIP') or ''}/{hp}"
            if key in seen:
                errs.append(ferr.duplicate(f"{path}[{ci}].ports[{pi}].hostPort", key))
            seen.add(key)
    return errs


def _validate_containers(containers: list, volumes: dict, grace: Any, path: str) -> list[FieldError]:
    if not containers:
        return [ferr.required(path)]
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, c in enumerate(containers):
        if not isinstance(c, dict):
            continue
        p = f"{path}[{i}]"
        errs += _validate_container_common(c, volumes, p)
        if c.get("name") in names:
            errs.append(ferr.duplicate(f"{p}.name", c.get("name")))
        else:
            names.add(c.get("name"))
        if c.get("lifecycle") is not None:
            errs += _validate_lifecycle(c.get("lifecycle"), grace, f"{p}.lifecycle")
        errs += _validate_probe(c.get("livenessProbe"), grace, f"{p}.livenessProbe", "liveness")
        errs += _validate_probe(c.get("readinessProbe"), grace, f"{p}.readinessProbe", "readiness")
        errs += _validate_probe(c.get("startupProbe"), grace, f"{p}.startupProbe", "startup")
        if c.get("restartPolicy") is not None:
            errs.append(ferr.forbidden(f"{p}.restartPolicy", "may not be set for non-init containers"))
    errs += _host_port_conflicts(containers, path)
    return errs


def _validate_init_containers(inits: list, regular: list, volumes: dict, grace: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    names = {(c or {}).get("name") for c in regular}
    for i, c in enumerate(inits or []):
        if not isinstance(c, dict):
            continue
        p = f"{path}[{i}]"
        errs += _validate_container_common(c, volumes, p)
        always = False
        rp = c.get("restartPolicy")
        if rp is not None:
            if rp != "Always":
                errs.append(ferr.not_supported(f"{p}.restartPolicy", rp, ["Always"]))
            always = rp == "Always"
        if c.get("name") in names:
            errs.append(ferr.duplicate(f"{p}.name", c.get("name")))
        elif c.get("name"):
            names.add(c.get("name"))
        errs += _host_port_conflicts([c], path)
        if always:
            if c.get("lifecycle") is not None:
                errs += _validate_lifecycle(c.get("lifecycle"), grace, f"{p}.lifecycle")
            errs += _validate_probe(c.get("livenessProbe"), grace, f"{p}.livenessProbe", "liveness")
            errs += _validate_probe(c.get("readinessProbe"), grace, f"{p}.readinessProbe", "readiness")
            errs += _validate_probe(c.get("startupProbe"), grace, f"{p}.startupProbe", "startup")
        else:
            for f in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if c.get(f) is not None:
                    errs.append(ferr.forbidden(f"{p}.{f}", "may not be set for init containers without restartPolicy=Always"))
    return errs


_RESTART_POLICIES = ["Always", "OnFailure", "Never"]
_DNS_POLICIES = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
_TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]


def validate_tolerations(tolerations: list, path: str) -> list[FieldError]:
    """ValidateTolerations."""
    errs: list[FieldError] = []
    for i, t in enumerate(tolerations or []):
        if not isinstance(t, dict):
            continue
        p = f"{path}[{i}]"
        key, op, eff = t.get("key") or "", t.get("operator") or "", t.get("effect") or ""
        if key:
            errs += _qname_errs(key, f"{p}.key")
        if not key and op != "Exists":
            errs.append(ferr.invalid(f"{p}.operator", op,
                                     "operator must be Exists when `key` is empty, which means \"match all values and all keys\""))
        if t.get("tolerationSeconds") is not None and eff != "NoExecute":
            errs.append(ferr.invalid(f"{p}.effect", eff, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        if op in ("Equal", ""):
            msgs = common.label_value(t.get("value") or "")
            if msgs:
                errs.append(ferr.invalid(f"{p}.operator", t.get("value") or "", ";".join(msgs)))
        elif op == "Exists":
            if t.get("value"):
                errs.append(ferr.invalid(f"{p}.operator", t, "value must be empty when `operator` is 'Exists'"))
        else:
            errs.append(ferr.not_supported(f"{p}.operator", op, ["Equal", "Exists"]))
        if eff and eff not in _TAINT_EFFECTS:
            errs.append(ferr.not_supported(f"{p}.effect", eff, _TAINT_EFFECTS))
    return errs


def _validate_node_selector_requirement(rq: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    op, values = rq.get("operator"), rq.get("values") or []
    if op in ("In", "NotIn"):
        if not values:
            errs.append(ferr.required(f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
    elif op in ("Exists", "DoesNotExist"):
        if values:
            errs.append(ferr.forbidden(f"{path}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
    elif op in ("Gt", "Lt"):
        if len(values) != 1:
            errs.append(ferr.required(f"{path}.values", "must be specified single value when `operator` is 'Lt' or 'Gt'"))
    else:
        errs.append(ferr.invalid(f"{path}.operator", op or "", "not a valid selector operator"))
    errs += _qname_errs(rq.get("key") or "", f"{path}.key")
    return errs


def validate_node_selector_term(term: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for j, rq in enumerate(term.get("matchExpressions") or []):
        errs += _validate_node_selector_requirement(rq, f"{path}.matchExpressions[{j}]")
    for j, rq in enumerate(term.get("matchFields") or []):
        p = f"{path}.matchFields[{j}]"
        if rq.get("operator") in ("In", "NotIn"):
            if len(rq.get("values") or []) != 1:
                errs.append(ferr.required(f"{p}.values", "must be only one value when `operator` is 'In' or 'NotIn' for node field selector"))
        else:
            errs.append(ferr.invalid(f"{p}.operator", rq.get("operator") or "", "not a valid selector operator"))
        if rq.get("key") != "metadata.name":
            errs.append(ferr.invalid(f"{p}.key", rq.get("key") or "", "not a valid field selector key"))
    return errs


def validate_node_selector(ns: dict, path: str) -> list[FieldError]:
    terms = ns.get("nodeSelectorTerms") or []
    if not terms:
        return [ferr.required(f"{path}.nodeSelectorTerms", "must have at least one node selector term")]
    errs: list[FieldError] = []
    for i, t in enumerate(terms):
        errs += validate_node_selector_term(t or {}, f"{path}.nodeSelectorTerms[{i}]")
    return errs


def _validate_pod_affinity_term(term: dict, path: str) -> list[FieldError]:
    errs = common.validate_label_selector(term.get("labelSelector"), f"{path}.labelSelector")
    errs += common.validate_label_selector(term.get("namespaceSelector"), f"{path}.namespaceSelector")
    for ns in term.get("namespaces") or []:
        errs += [ferr.invalid(f"{path}.namespace", ns, m) for m in dns1123_label(ns)]
    if not term.get("topologyKey"):
        errs.append(ferr.required(f"{path}.topologyKey", "can not be empty"))
    return errs + _qname_errs(term.get("topologyKey") or "", f"{path}.topologyKey")


def _validate_affinity(aff: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(aff, dict):
        return errs
    na = aff.get("nodeAffinity")
    if isinstance(na, dict):
        p = f"{path}.nodeAffinity"
        if isinstance(na.get("requiredDuringSchedulingIgnoredDuringExecution"), dict):
            errs += validate_node_selector(na["requiredDuringSchedulingIgnoredDuringExecution"],
                                           f"{p}.requiredDuringSchedulingIgnoredDuringExecution")
        for i, t in enumerate(na.get("preferredDuringSchedulingIgnoredDuringExecution") or []):
            tp = f"{p}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            w = t.get("weight", 0)
            if not _is_int(w) or w <= 0 or w > 100:
                errs.append(ferr.invalid(f"{tp}.weight", w, "must be in the range 1-100"))
            errs += validate_node_selector_term(t.get("preference") or {}, f"{tp}.preference")
    for key in ("podAffinity", "podAntiAffinity"):
        pa = aff.get(key)
        if not isinstance(pa, dict):
            continue
        p = f"{path}.{key}"
        for i, t in enumerate(pa.get("requiredDuringSchedulingIgnoredDuringExecution") or []):
            errs += _validate_pod_affinity_term(t or {}, f"{p}.requiredDuringSchedulingIgnoredDuringExecution[{i}]")
        for i, t in enumerate(pa.get("preferredDuringSchedulingIgnoredDuringExecution") or []):
            tp = f"{p}.preferredDuringSchedulingIgnoredDuringExecution[{i}]"
            w = t.get("weight", 0)
            if not _is_int(w) or w <= 0 or w > 100:
                errs.append(ferr.invalid(f"{tp}.weight", w, "must be in the range 1-100"))
            errs += _validate_pod_affinity_term(t.get("podAffinityTerm") or {}, f"{tp}.podAffinityTerm")
    return errs


def _validate_topology_spread(constraints: list, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, c in enumerate(constraints or []):
        p = f"{path}[{i}]"
        ms = c.get("maxSkew", 0)
        if not _is_int(ms) or ms <= 0:
            errs.append(ferr.invalid(f"{p}.maxSkew", ms, "must be greater than zero"))
        if not c.get("topologyKey"):
            errs.append(ferr.required(f"{p}.topologyKey", "can not be empty"))
        wu = c.get("whenUnsatisfiable") or ""
        if wu not in ("DoNotSchedule", "ScheduleAnyway"):
            errs.append(ferr.not_supported(f"{p}.whenUnsatisfiable", wu, ["DoNotSchedule", "ScheduleAnyway"]))
        for other in constraints[i + 1:]:
            if other.get("topologyKey") == c.get("topologyKey") and other.get("whenUnsatisfiable") == wu:
                errs.append(ferr.duplicate(f"{p}.{{topologyKey, whenUnsatisfiable}}", f"{{{c.get('topologyKey')}, {wu}}}"))
                break
        errs += common.validate_label_selector(c.get("labelSelector"), f"{p}.labelSelector")
    return errs


def _validate_pod_security_context(sc: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(sc, dict):
        return errs
    for f, fp in (("fsGroup", "fsGroup"), ("runAsUser", "runAsUser"), ("runAsGroup", "runAsGroup")):
        v = sc.get(f)
        if _is_int(v) and not 0 <= v <= 0xFFFFFFFF:
            errs.append(ferr.invalid(f"{path}.{fp}", v, common.inclusive_range_error(0, 0xFFFFFFFF)))
    for g, gid in enumerate(sc.get("supplementalGroups") or []):
        if _is_int(gid) and not 0 <= gid <= 0xFFFFFFFF:
            errs.append(ferr.invalid(f"{path}.supplementalGroups[{g}]", gid, common.inclusive_range_error(0, 0xFFFFFFFF)))
    fgp = sc.get("fsGroupChangePolicy")
    if fgp is not None and fgp not in ("Always", "OnRootMismatch"):
        errs.append(ferr.not_supported(f"{path}.fsGroupChangePolicy", fgp, ["Always", "OnRootMismatch"]))
    errs += _seccomp(sc.get("seccompProfile"), f"{path}.seccompProfile")
    return errs


_SYSCTL_SEGMENT = r"[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
SYSCTL_NAME_REGEXP = rf"^({_SYSCTL_SEGMENT}[\./])*{_SYSCTL_SEGMENT}$"
_SYSCTL_NAME = re.compile(SYSCTL_NAME_REGEXP)
_HOST_NET_SYSCTL, _HOST_IPC_SYSCTL = ("net.",), ("kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue.")


def _validate_sysctls(spec: dict, path: str) -> list[FieldError]:
    """validateSysctls: well-formed unique names, and none of the namespaced ones a host network or
    host IPC namespace would make node-wide."""
    errs: list[FieldError] = []
    sc = spec.get("securityContext")
    names: set[str] = set()
    for i, s in enumerate((sc or {}).get("sysctls") or [] if isinstance(sc, dict) else []):
        name = (s or {}).get("name") or ""
        p = f"{path}[{i}].name"
        if not name:
            errs.append(ferr.required(p))
        elif len(name) > 253 or not _SYSCTL_NAME.match(name):
            errs.append(ferr.invalid(p, name, f"must have at most 253 characters and match regex {SYSCTL_NAME_REGEXP}"))
        elif name in names:
            errs.append(ferr.duplicate(p, name))
        dotted = name.replace("/", ".")
        if spec.get("hostNetwork") and dotted.startswith(_HOST_NET_SYSCTL):
            errs.append(ferr.invalid(p, name, f'sysctl "{name}" not allowed with host net enabled'))
        if spec.get("hostIPC") and dotted.startswith(_HOST_IPC_SYSCTL):
            errs.append(ferr.invalid(p, name, f'sysctl "{name}" not allowed with host ipc enabled'))
        names.add(name)
    return errs


def validate_pod_spec(spec: dict, path: str) -> list[FieldError]:
    """ValidatePodSpec (as for a pod template: pod-only checks live in validate_pod)."""
    errs: list[FieldError] = []
    if not isinstance(spec, dict):
        return [ferr.required(path)]
    grace = spec.get("terminationGracePeriodSeconds")
    if grace is None:
        errs.append(ferr.required(f"{path}.terminationGracePeriodSeconds"))
    vols, verrs = _validate_volumes(spec.get("volumes") or [], f"{path}.volumes")
    errs += verrs
    containers = spec.get("containers") or []
    errs += _validate_containers(containers, vols, grace, f"{path}.containers")
    errs += _validate_init_containers(spec.get("initContainers") or [], containers, vols, grace, f"{path}.initContainers")
    if (spec.get("hostNetwork")):
        for i, c in enumerate(containers):
            for j, p in enumerate((c or {}).get("ports") or []):
                hp, cp = p.get("hostPort") or 0, p.get("containerPort") or 0
                if hp != 0 and hp != cp:
                    errs.append(ferr.invalid(f"{path}.containers[{i}].ports[{j}].hostPort", hp,
                                             "must match `containerPort` when `hostNetwork` is true"))
    rp = spec.get("restartPolicy") or ""
    if not rp:
        errs.append(ferr.required(f"{path}.restartPolicy"))
    elif rp not in _RESTART_POLICIES:
        errs.append(ferr.not_supported(f"{path}.restartPolicy", rp, _RESTART_POLICIES))
    dp = spec.get("dnsPolicy") or ""
    if not dp:
        errs.append(ferr.required(f"{path}.dnsPolicy"))
    elif dp not in _DNS_POLICIES:
        errs.append(ferr.not_supported(f"{path}.dnsPolicy", dp, _DNS_POLICIES))
    errs += common.validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    errs += _validate_pod_security_context(spec.get("securityContext"), f"{path}.securityContext")
    errs += _validate_sysctls(spec, f"{path}.securityContext.sysctls")
    for i, s in enumerate(spec.get("imagePullSecrets") or []):
        if isinstance(s, dict) and set(s) - {"name"}:
            errs.append(ferr.invalid(f"{path}.imagePullSecrets[{i}]", s, "only name may be set"))
    errs += _validate_affinity(spec.get("affinity"), f"{path}.affinity")
    dc = spec.get("dnsConfig")
    if dp == "None":
        if not isinstance(dc, dict):
            errs.append(ferr.required(f"{path}.dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is None"))
        elif not dc.get("nameservers"):
            errs.append(ferr.required(f"{path}.dnsConfig.nameservers",
                                      "must provide at least one DNS nameserver when `dnsPolicy` is None"))
    if isinstance(dc, dict) and len(dc.get("nameservers") or []) > 3:
        errs.append(ferr.invalid(f"{path}.dnsConfig.nameservers", dc["nameservers"], "must not have more than 3 nameservers"))
    for i, g in enumerate(spec.get("readinessGates") or []):
        errs += _qname_errs((g or {}).get("conditionType") or "", f"{path}.readinessGates[{i}].conditionType")
    seen_gates: set[str] = set()
    for i, g in enumerate(spec.get("schedulingGates") or []):
        gname = (g or {}).get("name") or ""
        errs += _qname_errs(gname, f"{path}.schedulingGates[{i}]")
        if gname in seen_gates:
            errs.append(ferr.duplicate(f"{path}.schedulingGates[{i}]", gname))
        seen_gates.add(gname)
    errs += _validate_topology_spread(spec.get("topologySpreadConstraints") or [], f"{path}.topologySpreadConstraints")
    san = spec.get("serviceAccountName") or ""
    if san:
        errs += _subdomain_errs(san, f"{path}.serviceAccountName")
    nn = spec.get("nodeName") or ""
    if nn:
        errs += _subdomain_errs(nn, f"{path}.nodeName")
    ads = spec.get("activeDeadlineSeconds")
    if _is_int(ads) and (ads < 1 or ads > 2147483647):
        errs.append(ferr.invalid(f"{path}.activeDeadlineSeconds", ads, common.inclusive_range_error(1, 2147483647)))
    if spec.get("hostname"):
        errs += _label_errs(spec["hostname"], f"{path}.hostname")
    if spec.get("subdomain"):
        errs += _label_errs(spec["subdomain"], f"{path}.subdomain")
    if spec.get("tolerations"):
        errs += validate_tolerations(spec["tolerations"], f"{path}.tolerations")
    for i, ha in enumerate(spec.get("hostAliases") or []):
        for j, h in enumerate((ha or {}).get("hostnames") or []):
            errs += _subdomain_errs(h, f"{path}.hostAliases[{i}].hostnames[{j}]")
    if spec.get("priorityClassName"):
        errs += _subdomain_errs(spec["priorityClassName"], f"{path}.priorityClassName")
    if spec.get("runtimeClassName") is not None:
        errs += _subdomain_errs(spec["runtimeClassName"], f"{path}.runtimeClassName")
    pp = spec.get("preemptionPolicy")
    if pp is not None:
        if pp == "":
            errs.append(ferr.required(f"{path}.preemptionPolicy"))
        elif pp not in ("PreemptLowerPriority", "Never"):
            errs.append(ferr.not_supported(f"{path}.preemptionPolicy", pp, ["PreemptLowerPriority", "Never"]))
    os_ = spec.get("os")
    if isinstance(os_, dict):
        if not os_.get("name"):
            errs.append(ferr.required(f"{path}.os.name", "cannot be empty"))
        elif os_["name"] not in ("linux", "windows"):
            errs.append(ferr.not_supported(f"{path}.os", os_["name"], ["linux", "windows"]))
    return errs


def validate_pod_template(template: dict, path: str) -> list[FieldError]:
    """ValidatePodTemplateSpec: labels and annotations (at `<path>.labels`, as upstream words it) and the spec."""
    errs: list[FieldError] = []
    if not isinstance(template, dict):
        return [ferr.required(path)]
    meta = template.get("metadata") or {}
    errs += common.validate_labels(meta.get("labels"), f"{path}.labels")
    errs += common.validate_annotations(meta.get("annotations"), f"{path}.annotations")
    errs += validate_pod_spec(template.get("spec") or {}, f"{path}.spec")
    if (template.get("spec") or {}).get("ephemeralContainers"):
        errs.append(ferr.forbidden(f"{path}.spec.ephemeralContainers", "ephemeral containers not allowed in pod template"))
    return errs


def validate_pod(pod: dict) -> list[FieldError]:
    """ValidatePodCreate: metadata, spec, and the checks that apply to Pods but not templates."""
    spec = pod.get("spec") or {}
    errs = validate_pod_spec(spec, "spec")
    if not spec.get("serviceAccountName"):
        for vi, v in enumerate(spec.get("volumes") or []):
            for si, s in enumerate(((v or {}).get("projected") or {}).get("sources") or []):
                if (s or {}).get("serviceAccountToken") is not None:
                    errs.append(ferr.forbidden(f"spec.volumes[{vi}].projected.sources[{si}].serviceAccountToken",
                                               "must not be specified when serviceAccountName is not set"))
    for key in ("containers", "initContainers"):
        for i, c in enumerate(spec.get(key) or []):
            img = (c or {}).get("image") or ""
            if img != img.strip():
                errs.append(ferr.invalid(f"spec.{key}[{i}].image", img, "must not have leading or trailing whitespace"))
    return errs


def validate_pod_create(pod: dict) -> list[FieldError]:
    errs = validate_pod(pod)
    spec = pod.get("spec") or {}
    if spec.get("ephemeralContainers"):
        errs.append(ferr.forbidden("spec.ephemeralContainers", "cannot be set on create"))
    if spec.get("nodeName") and spec.get("schedulingGates"):
        errs.append(ferr.forbidden("spec.nodeName", "cannot be set until all schedulingGates have been cleared"))
    return errs


# ---------------------------------------------------------------------------------------------
# Pod update

UPDATABLE_POD_SPEC_FIELDS = (
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
)
POD_UPDATE_FORBIDDEN = "pod updates may not change fields other than " + ",".join(UPDATABLE_POD_SPEC_FIELDS)


def _spec_diff(old: Any, new: Any, path: str = "") -> list[str]:
    """A short `-`/`+` listing of what differs; upstream prints a cmp.Diff of the Go structs."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new)):
            out += _spec_diff(old.get(k), new.get(k), f"{path}.{k}" if path else k)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (o, n) in enumerate(zip(old, new, strict=True)):
            out += _spec_diff(o, n, f"{path}[{i}]")
        return out
    return [f"- \t{path}: {ferr.go_value(old)}", f"+ \t{path}: {ferr.go_value(new)}"]


def _validate_container_updates(new: list, old: list, path: str) -> tuple[list[FieldError], bool]:
    if len(new) != len(old):
        return [ferr.forbidden(path, "pod updates may not add or remove containers")], True
    errs: list[FieldError] = []
    for i, c in enumerate(new):
        img = (c or {}).get("image") or ""
        if not img:
            errs.append(ferr.required(f"{path}[{i}].image"))
        if img != img.strip():
            errs.append(ferr.invalid(f"{path}[{i}].image", img, "must not have leading or trailing whitespace"))
    return errs, False


def _only_added_tolerations(new: list, old: list, path: str) -> list[FieldError]:
    for o in old:
        found = False
        for n in new:
            oc = dict(o)
            if "tolerationSeconds" in n:
                oc["tolerationSeconds"] = n["tolerationSeconds"]
            else:
                oc.pop("tolerationSeconds", None)
            if oc == n:
                found = True
                break
        if not found:
            return [ferr.forbidden(path, "existing toleration can not be modified except its tolerationSeconds")]
    return validate_tolerations(new, path)


_POD_CONDITIONS = {"PodScheduled", "Initialized", "ContainersReady", "Ready", "PodReadyToStartContainers",
                   "DisruptionTarget", "PodResizePending", "PodResizeInProgress"}


def validate_pod_status_update(new: dict, old: dict) -> list[FieldError]:
    """ValidatePodStatusUpdate: the spec is the stored one (the status strategy keeps it), so only
    metadata and status are checked: condition types, nominated node, pod and host IPs, and containers
    of a never-restarting pod not coming back from terminated."""
    errs = common.validate_object_meta_update(new, old)
    status = new.get("status") or {}
    for i, c in enumerate(status.get("conditions") or []):
        ctype = (c or {}).get("type") or ""
        if ctype not in _POD_CONDITIONS:
            errs += [ferr.invalid(f"status.conditions[{i}].type", ctype, m) for m in common.qualified_name(ctype)]
    nominated = status.get("nominatedNodeName")
    if nominated:
        errs += [ferr.invalid("status.nominatedNodeName", nominated, m) for m in common.dns1123_subdomain(nominated)]
    for key in ("podIPs", "hostIPs"):
        ips = status.get(key) or []
        if len(ips) > 2:
            errs.append(ferr.too_many(f"status.{key}", len(ips), 2))
        for i, entry in enumerate(ips):
            errs += common.ip_errors((entry or {}).get("ip"), f"status.{key}[{i}].ip")
    if ((new.get("spec") or {}).get("restartPolicy") or "Always") == "Never":
        for key in ("containerStatuses", "initContainerStatuses"):
            was = {cs.get("name"): cs for cs in (old.get("status") or {}).get(key) or [] if isinstance(cs, dict)}
            for i, cs in enumerate(status.get(key) or []):
                before = was.get((cs or {}).get("name"))
                if before and "terminated" in (before.get("state") or {}) and \
                        "terminated" not in ((cs or {}).get("state") or {}):
                    errs.append(ferr.forbidden(f"status.{key}[{i}].state",
                                               "may not be transitioned to non-terminated state"))
    return errs


def validate_pod_update(new: dict, old: dict) -> list[FieldError]:
    """ValidatePodUpdate: only images, activeDeadlineSeconds, added tolerations and gates may change."""
    errs = common.validate_object_meta_update(new, old)
    errs += validate_pod(new)
    ns, os_ = new.get("spec") or {}, old.get("spec") or {}
    cerrs, stop = _validate_container_updates(ns.get("containers") or [], os_.get("containers") or [], "spec.containers")
    errs += cerrs
    if stop:
        return errs
    cerrs, stop = _validate_container_updates(ns.get("initContainers") or [], os_.get("initContainers") or [],
                                              "spec.initContainers")
    errs += cerrs
    if stop:
        return errs
    nads, oads = ns.get("activeDeadlineSeconds"), os_.get("activeDeadlineSeconds")
    if nads is not None:
        if _is_int(nads) and (nads < 0 or nads > 2147483647):
            errs.append(ferr.invalid("spec.activeDeadlineSeconds", nads, common.inclusive_range_error(0, 2147483647)))
            return errs
        if oads is not None and _is_int(nads) and oads < nads:
            errs.append(ferr.invalid("spec.activeDeadlineSeconds", nads, "must be less than or equal to previous value"))
            return errs
    elif oads is not None:
        errs.append(ferr.invalid("spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"))
    errs += _only_added_tolerations(ns.get("tolerations") or [], os_.get("tolerations") or [], "spec.tolerations")
    new_gates = {(g or {}).get("name") for g in ns.get("schedulingGates") or []}
    old_gates = {(g or {}).get("name") for g in os_.get("schedulingGates") or []}
    for i, g in enumerate(ns.get("schedulingGates") or []):
        if (g or {}).get("name") in new_gates - old_gates:
            errs.append(ferr.forbidden(f"spec.schedulingGates[{i}].name",
                                       f"only deletion is allowed, but found new scheduling gate '{g.get('name')}'"))
    if ns == os_:
        return errs
    old_qos = (old.get("status") or {}).get("qosClass") or compute_qos(os_)
    if old_qos != compute_qos(ns):
        errs.append(ferr.invalid("metadata", (new.get("status") or {}).get("qosClass") or old_qos, "Pod QoS is immutable"))
    munged = copy.deepcopy(ns)
    for key in ("containers", "initContainers"):
        for i, c in enumerate(munged.get(key) or []):
            c["image"] = (os_.get(key) or [])[i].get("image")
    if "activeDeadlineSeconds" in os_:
        munged["activeDeadlineSeconds"] = os_["activeDeadlineSeconds"]
    else:
        munged.pop("activeDeadlineSeconds", None)
    for key in ("schedulingGates", "tolerations"):
        if key in os_:
            munged[key] = os_[key]
        else:
            munged.pop(key, None)
    ogp, mgp = os_.get("terminationGracePeriodSeconds"), munged.get("terminationGracePeriodSeconds")
    if _is_int(ogp) and ogp < 0 and mgp == 1:
        munged["terminationGracePeriodSeconds"] = ogp
    if os_.get("schedulingGates"):
        munged["nodeSelector"] = os_.get("nodeSelector")
        if munged["nodeSelector"] is None:
            munged.pop("nodeSelector")
    if munged != os_:
        diff = "\n".join(["  core.PodSpec{", *_spec_diff(os_, munged), "  }"])
        errs.append(ferr.forbidden("spec", f"{POD_UPDATE_FORBIDDEN}\n{diff}\n"))
    return errs


# ---------------------------------------------------------------------------------------------
# kubectl columns (printPod)


def _is_restartable_init(c: dict | None) -> bool:
    return bool(c) and c.get("restartPolicy") == "Always"


def _condition_true(conditions: list, ctype: str) -> bool:
    return any((c or {}).get("type") == ctype and c.get("status") == "True" for c in conditions or [])


def _later(a: str | None, b: str | None) -> str | None:
    ta, tb = parse_time(a), parse_time(b)
    if tb is None:
        return a
    if ta is None or ta < tb:
        return b
    return a


def pod_summary(pod: dict, now: float | None = None) -> tuple[str, str, str]:
    """printPod's READY, STATUS and RESTARTS cells."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    meta = pod.get("metadata") or {}
    restarts = 0
    sidecar_restarts = 0
    total = len(spec.get("containers") or [])
    ready = 0
    last_restart: str | None = None
    last_sidecar_restart: str | None = None
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    inits = {c.get("name"): c for c in spec.get("initContainers") or [] if isinstance(c, dict)}
    total += sum(1 for c in inits.values() if _is_restartable_init(c))
    n_init = len(spec.get("initContainers") or [])

    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        restarts += cs.get("restartCount") or 0
        last_term = (cs.get("lastState") or {}).get("terminated")
        if last_term:
            last_restart = _later(last_restart, last_term.get("finishedAt"))
        restartable = _is_restartable_init(inits.get(cs.get("name")))
        if restartable:
            sidecar_restarts += cs.get("restartCount") or 0
            if last_term:
                last_sidecar_restart = _later(last_sidecar_restart, last_term.get("finishedAt"))
        state = cs.get("state") or {}
        term, wait = state.get("terminated"), state.get("waiting")
        if term and term.get("exitCode", 0) == 0:
            continue
        if restartable and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if term:
            if not term.get("reason"):
                if term.get("signal"):
                    reason = f"Init:Signal:{term['signal']}"
                else:
                    reason = f"Init:ExitCode:{term.get('exitCode', 0)}"
            else:
                reason = "Init:" + term["reason"]
            initializing = True
        elif wait and wait.get("reason") and wait.get("reason") != "PodInitializing":
            reason = "Init:" + wait["reason"]
            initializing = True
        else:
            reason = f"Init:{i}/{n_init}"
            initializing = True
        break

    if not initializing or _condition_true(status.get("conditions"), "Initialized"):
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += cs.get("restartCount") or 0
            last_term = (cs.get("lastState") or {}).get("terminated")
            if last_term:
                last_restart = _later(last_restart, last_term.get("finishedAt"))
            state = cs.get("state") or {}
            wait, term, running = state.get("waiting"), state.get("terminated"), state.get("running")
            if wait is not None and wait.get("reason"):
                reason = wait["reason"]
            elif term is not None and term.get("reason"):
                reason = term["reason"]
            elif term is not None:
                reason = f"Signal:{term['signal']}" if term.get("signal") else f"ExitCode:{term.get('exitCode', 0)}"
            elif cs.get("ready") and running is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(status.get("conditions"), "Ready") else "NotReady"

    if meta.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif meta.get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_str = str(restarts)
    if restarts != 0 and last_restart and parse_time(last_restart) is not None:
        restarts_str = f"{restarts} ({age(last_restart, now)} ago)"
    return f"{ready}/{total}", reason, restarts_str


def pod_status_text(pod: dict) -> str:
    """kubectl's STATUS column for a pod (Running, Pending, ContainerCreating, Init:0/1, Terminating...)."""
    return pod_summary(pod)[1]


def pod_ready_count(pod: dict) -> str:
    """kubectl's READY column for a pod: ready/total containers (restartable init containers count)."""
    return pod_summary(pod)[0]


def pod_row(pod: dict, now: float | None = None) -> list:
    """Cells after NAME: READY STATUS RESTARTS AGE | IP NODE NOMINATED NODE READINESS GATES."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    ready, reason, restarts = pod_summary(pod, now)
    ips = status.get("podIPs") or []
    ip = (ips[0] or {}).get("ip") if ips else ""
    gates = spec.get("readinessGates") or []
    gates_cell = "<none>"
    if gates:
        true = 0
        for g in gates:
            for c in status.get("conditions") or []:
                if c.get("type") == g.get("conditionType"):
                    if c.get("status") == "True":
                        true += 1
                    break
        gates_cell = f"{true}/{len(gates)}"
    return [ready, reason, restarts, age((pod.get("metadata") or {}).get("creationTimestamp"), now),
            ip or "<none>", spec.get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>", gates_cell]


def layout_container_cells(containers: list) -> tuple[str, str]:
    """layoutContainerCells: names and images joined by commas (the CONTAINERS/IMAGES wide columns)."""
    cs = [c for c in containers or [] if isinstance(c, dict)]
    return ",".join(c.get("name") or "" for c in cs), ",".join(c.get("image") or "" for c in cs)
