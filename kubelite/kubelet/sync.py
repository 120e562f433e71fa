"""One pod's sync, level-triggered like upstream's SyncPod/computePodActions: compare the pod spec
with what the runtime has for the pod's UID and take the next steps: sandbox, init containers in
order, app containers, restarts with CrashLoopBackOff, liveness kills; then write the status.
Termination (deletionTimestamp): preStop, StopContainer with the grace period, stop the sandbox,
final status, and delete the pod object with gracePeriodSeconds=0."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any

import orjson

from kubelite.api.errors import StatusError
from kubelite.api.kinds.common import parse_quantity
from kubelite.kubelet import env as envmod
from kubelite.kubelet import status as statusmod
from kubelite.kubelet import termination
from kubelite.kubelet.backoff import Backoff
from kubelite.kubelet.config import KubeletConfig
from kubelite.kubelet.images import ImageManager, ImagePullError
from kubelite.kubelet.probes import ProbeManager
from kubelite.kubelet.volumes import VolumeManager
from kubelite.runtime.cri import CRIError, RuntimeClient, pb

log = logging.getLogger(__name__)

L_POD_NAME = "io.kubernetes.pod.name"
L_POD_NAMESPACE = "io.kubernetes.pod.namespace"
L_POD_UID = "io.kubernetes.pod.uid"
L_CONTAINER_NAME = "io.kubernetes.container.name"
L_CONTAINER_TYPE = "io.kubernetes.container.type"  # kubelite: "init", "app" or "ephemeral"
A_HASH = "io.kubernetes.container.hash"
A_RESTART_COUNT = "io.kubernetes.container.restartCount"
A_TERMINATION_PATH = "io.kubernetes.container.terminationMessagePath"
A_GRACE = "io.kubernetes.pod.terminationGracePeriod"
MIN_GRACE = 2  # upstream's minimumGracePeriodInSeconds
KEEP_DEAD_PER_CONTAINER = 1  # exited instances kept beside the newest (for logs --previous)


def container_hash(c: dict) -> str:
    return hashlib.sha256(orjson.dumps({"image": c.get("image"), "name": c.get("name")})).hexdigest()[:16]


def _milli(v: Any) -> int:
    return int((parse_quantity(v) * 1000).to_integral_value()) if v not in (None, "") else 0


def _bytes(v: Any) -> int:
    return int(parse_quantity(v)) if v not in (None, "") else 0


def linux_resources(container: dict, qos: str, memory_capacity: int) -> pb.LinuxContainerResources:
    """cpu shares/quota and memory limit as upstream's kuberuntime (cgroupfs, 100 ms CFS period)."""
    res = container.get("resources") or {}
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    cpu_req = _milli(req.get("cpu") if req.get("cpu") is not None else lim.get("cpu"))
    cpu_lim = _milli(lim.get("cpu"))
    mem_lim = _bytes(lim.get("memory"))
    mem_req = _bytes(req.get("memory") if req.get("memory") is not None else lim.get("memory"))
    r = pb.LinuxContainerResources(cpu_shares=max(2, cpu_req * 1024 // 1000) if cpu_req else 2)
    if cpu_lim:
        r.cpu_period = 100000
        r.cpu_quota = max(1000, cpu_lim * 100000 // 1000)
    if mem_lim:
        r.memory_limit_in_bytes = mem_lim
    if qos == "Guaranteed":
        r.oom_score_adj = -997
    elif qos == "BestEffort":
        r.oom_score_adj = 1000
    else:
        adj = 1000 - (1000 * mem_req) // memory_capacity if memory_capacity else 999
        r.oom_score_adj = int(min(max(adj, 2), 999))
    return r


class PodSyncer:
    def __init__(self, *, client: Any, runtime: RuntimeClient, config: KubeletConfig, recorder: Any,
                 images: ImageManager, volumes: VolumeManager, probes: ProbeManager, node_ip: str,
                 runtime_name: str, allocatable: dict[str, str], memory_capacity: int, services: Any = None):
        self.client = client
        self.runtime = runtime
        self.config = config
        self.recorder = recorder
        self.images = images
        self.volumes = volumes
        self.probes = probes
        self.node_ip = node_ip
        self.runtime_name = runtime_name
        self.allocatable = allocatable
        self.memory_capacity = memory_capacity
        self.services = services  # an Informer of services, for the service link env vars
        self.backoff = Backoff(10.0, 300.0)
        self.waiting: dict[str, dict[str, tuple[str, str]]] = {}  # pod uid -> container -> (reason, message)
        self._last_status: dict[str, bytes] = {}
        # set by the kubelet while it imports the sandbox image in the background: sandboxes wait for it
        self.sandbox_image_ready: asyncio.Future | None = None

    # ---- runtime observation -------------------------------------------------------------

    async def _observe(self, uid: str) -> tuple[list[pb.PodSandbox], dict[str, list[pb.ContainerStatus]]]:
        sandboxes, containers = await asyncio.gather(self.runtime.list_pod_sandbox({L_POD_UID: uid}),
                                                     self.runtime.list_containers({L_POD_UID: uid}))
        sandboxes.sort(key=lambda s: s.created_at, reverse=True)
        statuses = await asyncio.gather(*(self._status(c.id) for c in containers))
        by_name: dict[str, list[pb.ContainerStatus]] = {}
        for cs in statuses:
            if cs is not None:
                by_name.setdefault(cs.metadata.name, []).append(cs)
        for lst in by_name.values():
            lst.sort(key=lambda s: (s.metadata.attempt, s.created_at), reverse=True)
        return sandboxes, by_name

    async def _status(self, cid: str) -> pb.ContainerStatus | None:
        try:
            cs = await self.runtime.container_status(cid)
        except CRIError as e:
            if e.not_found:
                return None
            raise
        if cs.state == pb.CONTAINER_EXITED and not cs.message:
            cs.message = termination.message(cs)
        return cs

    # ---- configs ---------------------------------------------------------------------------

    def sandbox_config(self, pod: dict, attempt: int) -> pb.PodSandboxConfig:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        host_network = bool(spec.get("hostNetwork"))
        labels = {**(meta.get("labels") or {}), L_POD_NAME: meta["name"], L_POD_NAMESPACE: meta["namespace"],
                  L_POD_UID: meta["uid"]}
        cfg = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=meta["name"], uid=meta["uid"], namespace=meta["namespace"],
                                           attempt=attempt),
            hostname="" if host_network else (spec.get("hostname") or meta["name"])[:63],
            log_directory=self.config.pod_log_dir(meta["namespace"], meta["name"], meta["uid"]),
            labels=labels, annotations=dict(meta.get("annotations") or {}))
        dns = self._dns_config(pod)
        if dns is not None:
            cfg.dns_config.CopyFrom(dns)
        for c in spec.get("containers") or []:
            for p in c.get("ports") or []:
                if p.get("hostPort"):
                    cfg.port_mappings.append(pb.PortMapping(
                        protocol={"UDP": pb.UDP, "SCTP": pb.SCTP}.get(p.get("protocol") or "TCP", pb.TCP),
                        container_port=int(p.get("containerPort") or 0), host_port=int(p["hostPort"]),
                        host_ip=p.get("hostIP") or ""))
        ns_opts = cfg.linux.security_context.namespace_options
        ns_opts.network = pb.NODE if host_network else pb.POD
        ns_opts.pid = pb.NODE if spec.get("hostPID") else (pb.POD if spec.get("shareProcessNamespace") else pb.CONTAINER)
        ns_opts.ipc = pb.NODE if spec.get("hostIPC") else pb.POD
        for s in ((spec.get("securityContext") or {}).get("sysctls") or []):
            cfg.linux.sysctls[_dotted_sysctl(s["name"])] = str(s.get("value", ""))
        return cfg

    def _dns_config(self, pod: dict) -> pb.DNSConfig | None:
        spec = pod.get("spec") or {}
        policy = spec.get("dnsPolicy") or "ClusterFirst"
        ns = pod["metadata"]["namespace"]
        domain = self.config.cluster_domain
        extra = spec.get("dnsConfig") or {}
        if policy == "None":
            base = pb.DNSConfig()
        elif policy == "Default" or (policy == "ClusterFirst" and spec.get("hostNetwork")):
            if not extra:
                return None  # the runtime copies the host's resolv.conf
            base = _host_resolv()
        else:
            base = pb.DNSConfig(servers=[self.config.cluster_dns],
                                searches=[f"{ns}.svc.{domain}", f"svc.{domain}", domain], options=["ndots:5"])
        for s in extra.get("nameservers") or []:
            if s not in base.servers:
                base.servers.append(s)
        for s in extra.get("searches") or []:
            if s not in base.searches:
                base.searches.append(s)
        for o in extra.get("options") or []:
            opt = o.get("name", "") + (f":{o['value']}" if o.get("value") else "")  # an empty value: just the name
            base.options[:] = [x for x in base.options if x.split(":")[0] != o.get("name")] + [opt]
        return base

    async def container_config(self, pod: dict, c: dict, attempt: int, image_ref: str, volume_paths: dict[str, str],
                               pod_ips: list[str], objects: envmod.ObjectSource, kind: str) -> pb.ContainerConfig:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        service_vars = self._service_env(pod) if spec.get("enableServiceLinks", True) is not False else \
            self._service_env(pod, master_only=True)
        env = await envmod.container_env(pod, c, objects, host_ip=self.node_ip, pod_ips=pod_ips,
                                         service_vars=service_vars, allocatable=self.allocatable)
        command, args = envmod.expand_command(c, env)
        mounts = self.volumes.mounts(pod, c, volume_paths, env)
        targets = {m.container_path for m in mounts}
        if not spec.get("hostNetwork") and "/etc/hosts" not in targets:
            mounts.append(pb.Mount(container_path="/etc/hosts",
                                   host_path=self.volumes.etc_hosts(pod, pod_ips[0] if pod_ips else "")))
        tpath = c.get("terminationMessagePath") or "/dev/termination-log"
        if tpath not in targets:
            mounts.append(pb.Mount(container_path=tpath,
                                   host_path=self.volumes.termination_log(meta["uid"], c["name"], attempt)))
        qos = (pod.get("status") or {}).get("qosClass") or statusmod._qos(spec)
        sc = c.get("securityContext") or {}
        psc = spec.get("securityContext") or {}
        lsc = pb.LinuxContainerSecurityContext(privileged=bool(sc.get("privileged")),
                                               readonly_rootfs=bool(sc.get("readOnlyRootFilesystem")))
        run_as_user = sc.get("runAsUser", psc.get("runAsUser"))
        if run_as_user is not None:
            lsc.run_as_user.value = int(run_as_user)
        run_as_group = sc.get("runAsGroup", psc.get("runAsGroup"))
        if run_as_group is not None:
            lsc.run_as_group.value = int(run_as_group)
        for g in psc.get("supplementalGroups") or []:
            lsc.supplemental_groups.append(int(g))
        if psc.get("fsGroup") is not None and int(psc["fsGroup"]) not in lsc.supplemental_groups:
            lsc.supplemental_groups.append(int(psc["fsGroup"]))
        caps = sc.get("capabilities") or {}
        lsc.capabilities.add_capabilities.extend("CAP_" + x if not x.startswith("CAP_") else x
                                                 for x in caps.get("add") or [])
        lsc.capabilities.drop_capabilities.extend("CAP_" + x if not x.startswith("CAP_") and x != "ALL" else x
                                                  for x in caps.get("drop") or [])
        lsc.namespace_options.network = pb.NODE if spec.get("hostNetwork") else pb.POD
        lsc.namespace_options.pid = pb.NODE if spec.get("hostPID") else (
            pb.POD if spec.get("shareProcessNamespace") else pb.CONTAINER)
        lsc.namespace_options.ipc = pb.NODE if spec.get("hostIPC") else pb.POD
        target = c.get("targetContainerName") if kind == "ephemeral" else None
        if target and not spec.get("hostPID") and not spec.get("shareProcessNamespace"):
            # kubectl debug --target: the debugger sees the target container's processes
            _, instances = await self._observe(meta["uid"])
            running = [cs for cs in instances.get(target, []) if cs.state == pb.CONTAINER_RUNNING]
            if running:
                lsc.namespace_options.pid = pb.TARGET
                lsc.namespace_options.target_id = running[0].id
        if sc.get("allowPrivilegeEscalation") is False:
            lsc.no_new_privs = True
        labels = {L_POD_NAME: meta["name"], L_POD_NAMESPACE: meta["namespace"], L_POD_UID: meta["uid"],
                  L_CONTAINER_NAME: c["name"], L_CONTAINER_TYPE: kind}
        annotations = {A_HASH: container_hash(c), A_RESTART_COUNT: str(attempt), A_TERMINATION_PATH: tpath,
                       termination.A_TERMINATION_POLICY: c.get("terminationMessagePolicy") or "File",
                       A_GRACE: str(spec.get("terminationGracePeriodSeconds", 30))}
        return pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=c["name"], attempt=attempt),
            image=pb.ImageSpec(image=image_ref, user_specified_image=c.get("image", "")),
            command=command, args=args, working_dir=c.get("workingDir") or "",
            envs=[pb.KeyValue(key=k, value=v) for k, v in env], mounts=mounts,
            labels=labels, annotations=annotations, log_path=f"{c['name']}/{attempt}.log",
            stdin=bool(c.get("stdin")), stdin_once=bool(c.get("stdinOnce")), tty=bool(c.get("tty")),
            linux=pb.LinuxContainerConfig(resources=linux_resources(c, qos, self.memory_capacity),
                                          security_context=lsc))

    def _service_env(self, pod: dict, master_only: bool = False) -> dict[str, str]:
        if self.services is None:
            return {}
        ns = pod["metadata"]["namespace"]
        master = [s for s in self.services.store.list("default") if s["metadata"]["name"] == "kubernetes"]
        local = [] if master_only else self.services.store.list(ns)
        return envmod.service_env(local, ns, master)

    # ---- the sync -----------------------------------------------------------------------------

    async def sync(self, pod: dict) -> float | None:
        """One step for a pod this node runs; returns seconds until the next wanted sync."""
        meta, spec = pod["metadata"], pod.get("spec") or {}
        uid = meta["uid"]
        if meta.get("deletionTimestamp"):
            await self.terminate(pod)
            return None
        sandboxes, instances = await self._observe(uid)
        waiting = self.waiting.setdefault(uid, {})
        obs = statusmod.Observed(instances=instances, waiting=waiting, host_ip=self.node_ip,
                                 runtime_name=self.runtime_name)
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            await self._stop_all(pod, sandboxes, instances, MIN_GRACE)
            obs.terminal = True
            await self._write_status(pod, obs)
            return None

        if not sandboxes and phase in (None, "", "Pending"):
            why = forbidden_sysctl(spec)
            if why is not None:
                await self._reject(pod, "SysctlForbidden", why)
                return None

        ready = next((s for s in sandboxes if s.state == pb.SANDBOX_READY), None)
        fresh_sandbox = False
        if ready is None:
            if sandboxes and self._completed(pod, instances):
                obs.terminal = True
                await self._write_status(pod, obs)
                return None
            await self._stop_all(pod, sandboxes, instances, MIN_GRACE, remove_sandboxes=True)
            attempt = (max(s.metadata.attempt for s in sandboxes) + 1) if sandboxes else 0
            cfg = self.sandbox_config(pod, attempt)
            if self.sandbox_image_ready is not None:
                await asyncio.shield(self.sandbox_image_ready)
            try:
                sid = await self.runtime.run_pod_sandbox(cfg)
            except CRIError as e:
                self.recorder.event(pod, "Warning", "FailedCreatePodSandBox",
                                    f"Failed to create pod sandbox: {e}")
                await self._write_status(pod, obs)
                return 5.0
            if sandboxes:
                self.recorder.event(pod, "Normal", "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
            if sandboxes or any(instances.values()):
                sandboxes, instances = await self._observe(uid)
                obs.instances = instances
                ready = next(s for s in sandboxes if s.id == sid)
            else:  # the pod's first sandbox: nothing else to look at, no containers can exist yet
                ready = pb.PodSandbox(id=sid, metadata=cfg.metadata, state=pb.SANDBOX_READY)
            fresh_sandbox = True
        sandbox_cfg = self.sandbox_config(pod, ready.metadata.attempt)
        if spec.get("hostNetwork"):
            pod_ips = [self.node_ip]
        else:
            st = await self.runtime.pod_sandbox_status(ready.id)
            pod_ips = [ip for ip in [st.network.ip] + [x.ip for x in st.network.additional_ips] if ip]
        obs.sandbox_ready, obs.pod_ips = True, pod_ips
        if fresh_sandbox:
            # upstream's SyncPod publishes the status before starting containers: `kubectl get pods -w`
            # shows ContainerCreating (Init:0/N with init containers) between Pending and Running
            await self._write_status(pod, obs)
        objects = envmod.ObjectSource(self.client)
        try:
            volume_paths = await self.volumes.setup(pod, objects, host_ip=self.node_ip, pod_ips=pod_ips,
                                                    allocatable=self.allocatable)
        except envmod.ContainerConfigError as e:
            for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
                waiting[c["name"]] = ("CreateContainerConfigError", str(e))
            self.recorder.event(pod, "Warning", "FailedMount", f"MountVolume.SetUp failed: {e}")
            await self._write_status(pod, obs)
            return 5.0
        next_sync = 10.0
        acted = fresh_sandbox
        ctx = (sandbox_cfg, ready.id, volume_paths, pod_ips, objects)

        # init containers, one at a time, in order
        initialized = True
        for c in spec.get("initContainers") or []:
            inst = instances.get(c["name"], [])
            latest = inst[0] if inst else None
            if latest is not None and latest.state == pb.CONTAINER_RUNNING:
                initialized = False
                break
            if latest is not None and latest.state == pb.CONTAINER_EXITED and latest.exit_code == 0:
                continue
            initialized = False
            if latest is not None and latest.state == pb.CONTAINER_EXITED:
                if (spec.get("restartPolicy") or "Always") == "Never":
                    break  # the pod fails
                delay = self._backoff_delay(pod, c, latest)
                if delay:
                    next_sync = min(next_sync, delay)
                    break
            await self._start(pod, c, inst, ctx, "init")
            acted = True
            next_sync = 1.0
            break

        running: dict[str, str] = {}
        if initialized and spec.get("initContainers") and \
                not any(instances.get(c["name"]) for c in spec.get("containers") or []):
            await self._write_status(pod, obs)  # init done, app containers not yet created: PodInitializing
        if initialized:
            for c in spec.get("containers") or []:
                inst = instances.get(c["name"], [])
                latest = inst[0] if inst else None
                if latest is not None and latest.state == pb.CONTAINER_RUNNING:
                    reason = self._kill_reason(pod, c, latest)
                    if reason is None:
                        running[c["name"]] = latest.id
                        waiting.pop(c["name"], None)
                        continue
                    await self._kill(pod, c, latest.id, self._grace(pod), reason)
                    acted = True
                    next_sync = 0.2
                    continue
                if latest is not None and latest.state == pb.CONTAINER_EXITED:
                    if not self._should_restart(spec, latest):
                        waiting.pop(c["name"], None)
                        continue
                    delay = self._backoff_delay(pod, c, latest)
                    if delay:
                        next_sync = min(next_sync, delay)
                        continue
                elif latest is not None and latest.state == pb.CONTAINER_CREATED:
                    acted = True
                    try:
                        await self.runtime.start_container(latest.id)
                    except CRIError as e:
                        waiting[c["name"]] = ("RunContainerError", str(e))
                    continue
                acted = True
                if await self._start(pod, c, inst, ctx, "app") is None:
                    next_sync = min(next_sync, 2.0)
        for c in spec.get("ephemeralContainers") or []:
            # started once, whatever the init containers do, and never restarted (upstream's
            # EphemeralContainersToStart); a failed image pull or create is retried
            if not instances.get(c["name"]):
                acted = True
                if await self._start(pod, c, [], ctx, "ephemeral") is None:
                    next_sync = min(next_sync, 2.0)
        self.probes.ensure(pod, running, pod_ips[0] if pod_ips else "")
        if acted:  # a resync that changed nothing reports what it observed at its start
            sandboxes, instances = await self._observe(uid)
            obs.instances = instances
        status = await self._write_status(pod, obs)
        await self._gc_dead(instances)
        if status.get("phase") in ("Succeeded", "Failed"):
            await self._stop_all(pod, sandboxes, instances, MIN_GRACE)
            return None
        return next_sync

    async def _reject(self, pod: dict, reason: str, message: str) -> None:
        """The kubelet's rejectPod: the pod fails before anything runs, with the admit handler's reason."""
        meta = pod["metadata"]
        self.recorder.event(pod, "Warning", reason, message)
        try:
            await self.client.pods.patch(meta["name"], {"metadata": {"uid": meta["uid"]}, "status": {
                "phase": "Failed", "reason": reason, "message": f"Pod was rejected: {message}"}},
                "merge", meta["namespace"], subresource="status")
        except StatusError as e:
            if e.code not in (404, 409, 422):
                raise

    def _completed(self, pod: dict, instances: dict[str, list[pb.ContainerStatus]]) -> bool:
        """The sandbox died after every container finished and none is to restart: no new sandbox."""
        spec = pod.get("spec") or {}
        if (spec.get("restartPolicy") or "Always") == "Always":
            return False
        for c in spec.get("containers") or []:
            inst = instances.get(c["name"])
            if not inst or inst[0].state != pb.CONTAINER_EXITED or self._should_restart(spec, inst[0]):
                return False
        return True

    @staticmethod
    def _should_restart(spec: dict, cs: pb.ContainerStatus) -> bool:
        policy = spec.get("restartPolicy") or "Always"
        return policy == "Always" or (policy == "OnFailure" and cs.exit_code != 0)

    def _backoff_delay(self, pod: dict, c: dict, latest: pb.ContainerStatus) -> float:
        """0 to restart now (counting one more back-off), else the seconds left in CrashLoopBackOff."""
        meta = pod["metadata"]
        key = f"{meta['uid']}/{c['name']}"
        finished = latest.finished_at / 1e9 if latest.finished_at else time.time()
        if self.backoff.in_backoff_since(key, finished):
            delay = self.backoff.get(key)
            msg = (f"back-off {_duration(delay)} restarting failed container={c['name']} "
                   f"pod={meta['name']}_{meta['namespace']}({meta['uid']})")
            if self.waiting.setdefault(meta["uid"], {}).get(c["name"], ("",))[0] != "CrashLoopBackOff":
                self.recorder.event(pod, "Warning", "BackOff", f"Back-off restarting failed container {c['name']} "
                                    f"in pod {meta['name']}_{meta['namespace']}({meta['uid']})")
            self.waiting[meta["uid"]][c["name"]] = ("CrashLoopBackOff", msg)
            return max(0.2, self.backoff.remaining(key, finished))
        self.backoff.next(key)
        return 0.0

    async def _pull_secrets(self, pod: dict, objects: envmod.ObjectSource) -> list[dict]:
        """The pod's imagePullSecrets that exist; upstream warns once about the others and pulls anyway."""
        out, missing = [], []
        ns = pod["metadata"].get("namespace") or "default"
        for ref in (pod.get("spec") or {}).get("imagePullSecrets") or []:
            name = (ref or {}).get("name")
            if not name:
                continue
            try:
                secret = await objects.get("Secret", ns, name)
            except Exception as e:  # the API unreachable: as upstream, try the pull without it
                log.info("unable to retrieve pull secret %s/%s: %s", ns, name, e)
                secret = None
            if secret is None:
                missing.append(name)
            else:
                out.append(secret)
        if missing:
            self.recorder.event(pod, "Warning", "FailedToRetrieveImagePullSecret",
                                f"Unable to retrieve some image pull secrets ({', '.join(missing)}); attempting to "
                                "pull the image may not succeed.")
        return out

    def _kill_reason(self, pod: dict, c: dict, cs: pb.ContainerStatus) -> str | None:
        uid = pod["metadata"]["uid"]
        if cs.annotations.get(A_HASH) and cs.annotations.get(A_HASH) != container_hash(c):
            return f"Container {c['name']} definition changed, will be restarted"
        if c.get("livenessProbe") and self.probes.result(uid, c["name"], "livenessProbe", cs.id) is False:
            return f"Container {c['name']} failed liveness probe, will be restarted"
        if c.get("startupProbe") and self.probes.result(uid, c["name"], "startupProbe", cs.id) is False:
            return f"Container {c['name']} failed startup probe, will be restarted"
        return None

    async def _start(self, pod: dict, c: dict, inst: list[pb.ContainerStatus], ctx: tuple, kind: str) -> str | None:
        sandbox_cfg, sandbox_id, volume_paths, pod_ips, objects = ctx
        uid = pod["metadata"]["uid"]
        waiting = self.waiting.setdefault(uid, {})
        attempt = (inst[0].metadata.attempt + 1) if inst else 0
        try:
            image_ref = await self.images.ensure(pod, c, pod, sandbox_cfg, await self._pull_secrets(pod, objects))
        except ImagePullError as e:
            waiting[c["name"]] = (e.reason, e.message)
            return None
        except CRIError as e:
            waiting[c["name"]] = ("ErrImagePull", str(e))
            return None
        try:
            cfg = await self.container_config(pod, c, attempt, image_ref, volume_paths, pod_ips, objects, kind)
        except envmod.ContainerConfigError as e:
            waiting[c["name"]] = ("CreateContainerConfigError", str(e))
            self.recorder.event(pod, "Warning", "Failed", f"Error: {e}")
            return None
        try:
            cid = await self.runtime.create_container(sandbox_id, cfg, sandbox_cfg)
        except CRIError as e:
            waiting[c["name"]] = ("CreateContainerError", str(e))
            self.recorder.event(pod, "Warning", "Failed", f"Error: {e}")
            return None
        self.recorder.event(pod, "Normal", "Created", f"Created container: {c['name']}")
        try:
            await self.runtime.start_container(cid)
        except CRIError as e:
            waiting[c["name"]] = ("RunContainerError", str(e))
            self.recorder.event(pod, "Warning", "Failed", f"Error: {e}")
            return None
        waiting.pop(c["name"], None)
        self.recorder.event(pod, "Normal", "Started", f"Started container {c['name']}")
        post = ((c.get("lifecycle") or {}).get("postStart") or {})
        if post.get("exec"):
            try:
                r = await self.runtime.exec_sync(cid, list(post["exec"].get("command") or []), 30)
                if r.exit_code != 0:
                    self.recorder.event(pod, "Warning", "FailedPostStartHook",
                                        f"PostStartHook failed: exit code {r.exit_code}")
                    await self._kill(pod, c, cid, self._grace(pod), "FailedPostStartHook")
            except CRIError as e:
                self.recorder.event(pod, "Warning", "FailedPostStartHook", str(e))
        elif post.get("httpGet"):
            from kubelite.kubelet.probes import run_probe

            ok, why = await run_probe(self.runtime, {"httpGet": post["httpGet"], "timeoutSeconds": 30}, c, cid,
                                      pod_ips[0] if pod_ips else "")
            if not ok:
                self.recorder.event(pod, "Warning", "FailedPostStartHook",
                                    f"HTTP lifecycle hook ({post['httpGet'].get('path', '')}) for Container "
                                    f"\"{c['name']}\" in Pod \"{pod['metadata']['name']}\" failed - error: {why}")
                await self._kill(pod, c, cid, self._grace(pod), "FailedPostStartHook")
        return cid

    @staticmethod
    def _grace(pod: dict) -> int:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        g = meta.get("deletionGracePeriodSeconds")
        if g is None:
            g = spec.get("terminationGracePeriodSeconds", 30)
        return int(g if g is not None else 30)

    async def _kill(self, pod: dict, c: dict | None, cid: str, grace: int, message: str = "") -> None:
        """preStop (within the grace period), then StopContainer with what is left of it."""
        name = c["name"] if c else "?"
        start = time.monotonic()
        pre = ((c or {}).get("lifecycle") or {}).get("preStop") or {}
        if pre and grace > 0:
            try:
                await asyncio.wait_for(self._run_hook(pre, c or {}, cid, pod), grace)
            except TimeoutError:
                self.recorder.event(pod, "Warning", "FailedPreStopHook",
                                    f"PreStopHook failed: timed out after {grace}s")
            except Exception as e:
                self.recorder.event(pod, "Warning", "FailedPreStopHook", f"PreStopHook failed: {e}")
        remaining = max(MIN_GRACE, int(round(grace - (time.monotonic() - start))))
        self.recorder.event(pod, "Normal", "Killing", message or f"Stopping container {name}")
        try:
            await self.runtime.stop_container(cid, remaining)
        except CRIError as e:
            if not e.not_found:
                raise

    async def _run_hook(self, hook: dict, c: dict, cid: str, pod: dict) -> None:
        if hook.get("exec"):
            await self.runtime.exec_sync(cid, list(hook["exec"].get("command") or []), 0)
        elif hook.get("httpGet"):
            from kubelite.kubelet.probes import run_probe

            ips = [x.get("ip") for x in (pod.get("status") or {}).get("podIPs") or []]
            await run_probe(self.runtime, {"httpGet": hook["httpGet"], "timeoutSeconds": 30}, c, cid,
                            ips[0] if ips else "")
        elif hook.get("sleep"):
            await asyncio.sleep(int(hook["sleep"].get("seconds") or 0))

    async def _stop_all(self, pod: dict, sandboxes: list[pb.PodSandbox], instances: dict[str, list[pb.ContainerStatus]],
                        grace: int, remove_sandboxes: bool = False) -> None:
        specs = {c["name"]: c for c in (pod.get("spec") or {}).get("containers") or []}
        specs.update({c["name"]: c for c in (pod.get("spec") or {}).get("initContainers") or []})
        specs.update({c["name"]: c for c in (pod.get("spec") or {}).get("ephemeralContainers") or []})
        kills = [self._kill(pod, specs.get(name), cs.id, grace)
                 for name, inst in instances.items() for cs in inst if cs.state == pb.CONTAINER_RUNNING]
        await asyncio.gather(*kills)
        for s in sandboxes:
            if s.state == pb.SANDBOX_READY:
                await self.runtime.stop_pod_sandbox(s.id)
            if remove_sandboxes:
                await self.runtime.stop_pod_sandbox(s.id)
                await self.runtime.remove_pod_sandbox(s.id)

    async def _gc_dead(self, instances: dict[str, list[pb.ContainerStatus]]) -> None:
        for inst in instances.values():
            for cs in inst[1 + KEEP_DEAD_PER_CONTAINER:]:
                if cs.state == pb.CONTAINER_EXITED:
                    try:
                        await self.runtime.remove_container(cs.id)
                    except CRIError:
                        log.debug("removing dead container %s failed", cs.id, exc_info=True)

    # ---- termination -------------------------------------------------------------------------

    async def terminate(self, pod: dict) -> None:
        """A pod being deleted: stop everything within its grace period, report, then delete it."""
        meta = pod["metadata"]
        uid = meta["uid"]
        sandboxes, instances = await self._observe(uid)
        self.probes.stop_pod(uid)
        await self._stop_all(pod, sandboxes, instances, self._grace(pod))
        sandboxes, instances = await self._observe(uid)
        obs = statusmod.Observed(instances=instances, waiting={}, host_ip=self.node_ip,
                                 runtime_name=self.runtime_name, terminal=True)
        st = await self.runtime.pod_sandbox_status(sandboxes[0].id) if sandboxes else None
        if st is not None and st.network.ip:
            obs.pod_ips = [st.network.ip]
        try:
            await self._write_status(pod, obs, force=True)
            await self.client.pods.delete(meta["name"], meta["namespace"], grace_period_seconds=0,
                                          preconditions={"uid": uid})
        except StatusError as e:
            if e.code not in (404, 409):
                raise

    async def remove(self, pod: dict, grace: int | None = None) -> None:
        """The pod is gone from the API: kill what is left (force deletion) and remove it all."""
        uid = pod["metadata"]["uid"]
        self.probes.stop_pod(uid)
        sandboxes, instances = await self._observe(uid)
        await self._stop_all(pod, sandboxes, instances, self._grace(pod) if grace is None else grace)
        for inst in instances.values():
            for cs in inst:
                try:
                    await self.runtime.remove_container(cs.id)
                except CRIError:
                    pass
        for s in sandboxes:
            try:
                await self.runtime.stop_pod_sandbox(s.id)
                await self.runtime.remove_pod_sandbox(s.id)
            except CRIError:
                log.warning("removing sandbox %s failed", s.id, exc_info=True)
        await self.volumes.cleanup(uid)
        self.images.forget_pod(uid)
        self.backoff.forget_prefix(uid + "/")
        self.waiting.pop(uid, None)
        self._last_status.pop(uid, None)

    # ---- status ------------------------------------------------------------------------------

    async def _write_status(self, pod: dict, obs: statusmod.Observed, force: bool = False) -> dict:
        uid = pod["metadata"]["uid"]

        def ready_of(c: dict, cs: pb.ContainerStatus) -> bool:
            if not c.get("readinessProbe"):
                return True
            return bool(self.probes.result(uid, c["name"], "readinessProbe", cs.id))

        def started_of(c: dict, cs: pb.ContainerStatus) -> bool:
            if not c.get("startupProbe"):
                return True
            return bool(self.probes.result(uid, c["name"], "startupProbe", cs.id))

        status = statusmod.pod_status(pod, obs, ready_of, started_of)
        old = pod.get("status") or {}
        comparable = orjson.dumps(status, option=orjson.OPT_SORT_KEYS)
        if not force and (self._last_status.get(uid) == comparable or _same_status(old, status)):
            self._last_status[uid] = comparable
            return status
        meta = pod["metadata"]
        try:
            await self.client.pods.patch(meta["name"], {"metadata": {"uid": uid}, "status": status}, "merge",
                                         meta["namespace"], subresource="status")
            self._last_status[uid] = comparable
        except StatusError as e:
            if e.code not in (404, 409, 422):
                raise
            log.debug("status of %s/%s not written: %s", meta["namespace"], meta["name"], e.message)
        return status


# the kubelet's default safe sysctls (pkg/kubelet/sysctl/safe_sysctls.go, 1.32): namespaced and
# isolated from the node and other pods; anything else needs --allowed-unsafe-sysctls
SAFE_SYSCTLS = frozenset((
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"))


def _dotted_sysctl(name: str) -> str:
    """ConvertSysctlVariableToDotsSeparator: `kernel/shm_rmid_forced` and `net/ipv4/conf/eth0.100/x`
    become the dotted form the runtime expects (a dot inside a slash-separated segment becomes a slash)."""
    if "/" not in name:
        return name
    return ".".join(seg.replace(".", "/") for seg in name.split("/"))


def forbidden_sysctl(spec: dict) -> str | None:
    """The sysctl admit handler's message for the first sysctl not allowlisted, or None."""
    for s in ((spec.get("securityContext") or {}).get("sysctls") or []):
        if _dotted_sysctl(s.get("name") or "") not in SAFE_SYSCTLS:
            return f'forbidden sysctl: "{s.get("name")}" not allowlisted'
    return None


def _same_status(old: dict, new: dict) -> bool:
    keys = set(old) | set(new)
    return all(old.get(k) == new.get(k) for k in keys)


def _duration(seconds: float) -> str:
    """Go's time.Duration String for whole seconds: 10s, 1m20s, 5m0s."""
    s = int(seconds)
    return f"{s // 60}m{s % 60}s" if s >= 60 else f"{s}s"


def _host_resolv() -> pb.DNSConfig:
    cfg = pb.DNSConfig()
    try:
        with open("/etc/resolv.conf") as f:
            for line in f:
                parts = line.split()
                if not parts or parts[0].startswith("#"):
                    continue
                if parts[0] == "nameserver" and len(parts) > 1:
                    cfg.servers.append(parts[1])
                elif parts[0] == "search":
                    cfg.searches.extend(parts[1:])
                elif parts[0] == "options":
                    cfg.options.extend(parts[1:])
    except OSError:
        pass
    return cfg
