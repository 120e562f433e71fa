"""The one client: selectors, work queue and controller semantics, then the client end to end against a
real kubelite, over HTTPS (kubeconfig) and in-process (the API server's service in the same loop)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from kubelite.api.errors import StatusError
from kubelite.api.selectors import (
    SelectorError,
    object_fields,
    parse_field_selector,
    parse_label_selector,
    selector_from_label_selector,
    validate_field_selector,
)
from kubelite.client import (
    Client,
    Controller,
    EventRecorder,
    SharedInformerFactory,
    ShutDown,
    WorkQueue,
    controller_ref,
    index_by_owner_uid,
    is_controlled_by,
    new_controller_ref,
)
from kubelite.client.workqueue import ItemExponentialFailureRateLimiter


def run(coro: Awaitable) -> object:
    return asyncio.run(asyncio.wait_for(coro, 60))


# ---------------------------------------------------------------------------------------------
# Label selectors


@pytest.mark.parametrize("text,labels,expected", [
    ("app=web", {"app": "web"}, True),
    ("app==web", {"app": "db"}, False),
    ("app!=web", {}, True),
    ("env in (prod, qa)", {"env": "qa"}, True),
    ("env notin (prod,qa)", {"env": "qa"}, False),
    ("env notin (prod,qa)", {}, True),
    ("tier", {"tier": ""}, True),
    ("!tier", {"tier": "x"}, False),
    ("app=web,!canary,env in (prod)", {"app": "web", "env": "prod"}, True),
    ("app=web,!canary,env in (prod)", {"app": "web", "env": "prod", "canary": "1"}, False),
    ("x in (in,notin)", {"x": "notin"}, True),
    ("replicas>2", {"replicas": "3"}, True),
    ("replicas<2", {"replicas": "3"}, False),
    ("", {"anything": "x"}, True),
])
def test_label_selector_matches_as_upstream(text, labels, expected):
    assert parse_label_selector(text).matches(labels) is expected


@pytest.mark.parametrize("text,message", [
    ("a,", "found '', expected: identifier after ','"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("=a", "found '=', expected: !, identifier, or 'end of string'"),
    ("component not in (kube-apiserver)",
     "unable to parse requirement: found 'not', expected: in, notin, =, ==, !=, gt, lt"),
    ("a in b", "unable to parse requirement: found 'b' expected: '('"),
    ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
    ("app:monolith",
     "unable to parse requirement: <nil>: Invalid value: \"app:monolith\": name part must consist of alphanumeric "
     "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or "
     "'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
    ("a=" + "v" * 64, "unable to parse requirement: values[0][a]: Invalid value: \"" + "v" * 64
     + "\": must be no more than 63 characters"),
])
def test_label_selector_errors_are_worded_as_upstream(text, message):
    with pytest.raises(SelectorError) as e:
        parse_label_selector(text)
    assert str(e.value) == message


def test_label_selector_string_is_canonical():
    sel = parse_label_selector("z=1, env in (qa,prod),!gone,a")
    assert sel.to_string() == "a,env in (prod,qa),!gone,z=1"
    assert parse_label_selector(sel.to_string()) == sel


def test_metav1_label_selector_conversion():
    assert selector_from_label_selector(None).matches({}) is False  # nil selects nothing
    assert selector_from_label_selector({}).matches({"a": "b"}) is True  # empty selects everything
    sel = selector_from_label_selector({
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]},
                             {"key": "canary", "operator": "DoesNotExist"},
                             {"key": "env", "operator": "Exists"}]})
    assert sel.to_string() == "app=web,!canary,env,tier in (be,fe)"
    assert sel.matches({"app": "web", "tier": "fe", "env": "x"})
    assert not sel.matches({"app": "web", "tier": "fe"})
    with pytest.raises(SelectorError, match='"Bogus" is not a valid label selector operator'):
        selector_from_label_selector({"matchExpressions": [{"key": "a", "operator": "Bogus"}]})


# ---------------------------------------------------------------------------------------------
# Field selectors


def test_field_selectors_parse_and_match():
    pod = {"metadata": {"name": "p", "namespace": "d"}, "spec": {"hostNetwork": True},
           "status": {"phase": "Pending", "podIPs": [{"ip": "10.42.0.5"}]}}
    fields = object_fields("Pod", pod)
    assert fields["spec.hostNetwork"] == "true" and fields["status.podIP"] == "10.42.0.5"
    assert parse_field_selector("spec.nodeName=").matches(fields)  # unscheduled pods: missing reads as ""
    assert parse_field_selector("status.phase!=Running,metadata.namespace==d").matches(fields)
    assert not parse_field_selector("metadata.name=q").matches(fields)
    assert parse_field_selector(r"metadata.name=a\,b").requirements[0].value == "a,b"
    with pytest.raises(SelectorError, match=r"^invalid selector: 'name'; can't understand 'name'$"):
        parse_field_selector("name")
    ev = {"involvedObject": {"kind": "Pod", "name": "p"}, "source": {"component": "kubelet"}, "type": "Normal"}
    assert parse_field_selector("involvedObject.kind=Pod,source=kubelet").matches(object_fields("Event", ev))


def test_unsupported_field_labels_are_worded_as_upstream():
    with pytest.raises(SelectorError) as e:
        validate_field_selector("Deployment", parse_field_selector("spec.foo=1"), group="apps")
    assert str(e.value) == '"spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace"'
    with pytest.raises(SelectorError) as e:
        validate_field_selector("Pod", parse_field_selector("spec.foo=1"))
    assert str(e.value) == "field label not supported: spec.foo"
    legacy = validate_field_selector("Pod", parse_field_selector("spec.host=n1"))
    assert legacy.to_string() == "spec.nodeName=n1"


# ---------------------------------------------------------------------------------------------
# Work queue


def test_workqueue_dedupes_and_never_hands_a_key_to_two_workers():
    async def scenario() -> None:
        q = WorkQueue()
        q.add("a")
        q.add("a")
        q.add("b")
        assert len(q) == 2
        key = await q.get()
        assert key == "a"
        q.add("a")  # while processing: dirty, but not queued a second time
        assert len(q) == 1
        assert await q.get() == "b"
        getter = asyncio.ensure_future(q.get())
        await asyncio.sleep(0.01)
        assert not getter.done()  # "a" is still being processed
        q.done("a")
        assert await asyncio.wait_for(getter, 1) == "a"
        q.done("b")
        q.done("a")
        assert len(q) == 0

    run(scenario())


def test_workqueue_add_after_and_shutdown():
    async def scenario() -> None:
        q = WorkQueue()
        q.add_after("late", 0.05)
        q.add_after("late", 5)  # a later deadline does not postpone the earlier one
        assert len(q) == 0
        assert await asyncio.wait_for(q.get(), 1) == "late"
        q.done("late")
        q.add("left")
        q.shutdown()
        q.add("ignored")
        assert await q.get() == "left"  # drained after shutdown, as client-go does
        with pytest.raises(ShutDown):
            await q.get()

    run(scenario())


def test_rate_limiter_backs_off_exponentially_per_item():
    rl = ItemExponentialFailureRateLimiter()
    assert [rl.when("k") for _ in range(4)] == [0.005, 0.01, 0.02, 0.04]
    assert rl.when("other") == 0.005
    assert rl.num_requeues("k") == 4
    for _ in range(40):
        rl.when("k")
    assert rl.when("k") == 1000.0
    rl.forget("k")
    assert rl.num_requeues("k") == 0 and rl.when("k") == 0.005


def test_controller_requeues_failures_rate_limited_and_forgets_on_success():
    async def scenario() -> None:
        calls: list[str] = []

        async def sync(key: str) -> None:
            calls.append(key)
            if len(calls) < 3:
                raise RuntimeError("not yet")

        c = Controller("test", sync, workers=2)
        c.enqueue({"metadata": {"namespace": "ns", "name": "x"}})
        c.start()
        for _ in range(100):
            if len(calls) >= 3:
                break
            await asyncio.sleep(0.01)
        assert calls == ["ns/x"] * 3
        assert c.queue.num_requeues("ns/x") == 0
        await c.stop()

    run(scenario())


def test_owner_references():
    owner = {"metadata": {"name": "rs", "uid": "u1"}}
    ref = new_controller_ref(owner, "ReplicaSet", "apps/v1")
    assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": True,
                   "blockOwnerDeletion": True}
    pod = {"metadata": {"ownerReferences": [{"uid": "u0", "name": "x"}, ref]}}
    assert controller_ref(pod) == ref
    assert is_controlled_by(pod, owner) and not is_controlled_by(pod, {"metadata": {"uid": "u0"}})


# ---------------------------------------------------------------------------------------------
# End to end against a real kubelite


@pytest.fixture(scope="module")
def bare_cluster(tmp_path_factory: pytest.TempPathFactory):
    """An API server alone: no controllers writing beside the client under test, a short watch history."""
    from conftest import _make_cluster

    c = _make_cluster(tmp_path_factory, ["--disable-controller-manager", "--disable-scheduler",
                                         "--default-watch-cache-size", "50"])
    c.start()
    yield c
    c.stop()


@contextlib.asynccontextmanager
async def _client(kind: str, request: pytest.FixtureRequest) -> AsyncIterator[Client]:
    if kind == "http":
        cluster = request.getfixturevalue("bare_cluster")
        client = Client.from_kubeconfig(cluster.kubeconfig)
        try:
            yield client
        finally:
            await client.close()
        return
    from conftest import free_port

    from kubelite.apiserver.config import ServerConfig
    from kubelite.apiserver.controlplane import ControlPlane

    tmp = request.getfixturevalue("tmp_path_factory").mktemp("inproc")
    for attempt in range(5):
        plane = ControlPlane(ServerConfig(data_dir=str(tmp), port=free_port(), controllers=False, scheduler=False,
                                          watch_history=50, dns_listen=""))
        try:
            await plane.start()
            break
        except OSError:  # the free port was taken meanwhile: try another
            await plane.stop()
            if attempt == 4:
                raise
    try:
        yield Client.in_process(plane.service)
    finally:
        await plane.stop()


def e2e(fn: Callable[[Client, str], Awaitable[None]]) -> Callable:
    """Run `fn(client, namespace)` over HTTPS and in-process, in a namespace created by the client."""

    @pytest.mark.parametrize("transport", ["http", "inprocess"])
    def test(transport: str, request: pytest.FixtureRequest) -> None:
        async def scenario() -> None:
            async with _client(transport, request) as client:
                ns = "c-" + uuid.uuid4().hex[:8]
                await client.namespaces.create({"metadata": {"name": ns}})
                try:
                    await fn(client, ns)
                finally:
                    with contextlib.suppress(StatusError):
                        await client.namespaces.delete(ns)

        run(scenario())

    test.__name__ = fn.__name__
    test.__wrapped_fn__ = fn  # type: ignore[attr-defined]
    return test


def _cm(name: str, labels: dict | None = None, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}}, "data": data}


@e2e
async def test_crud_and_errors(client: Client, ns: str) -> None:
    cms = client.configmaps
    created = await cms.create(_cm("one", {"app": "web"}, a="1"), namespace=ns)
    assert created["metadata"]["uid"] and created["metadata"]["namespace"] == ns
    # the namespace comes from the object when not given
    await cms.create({**_cm("two", {"app": "db"}), "metadata": {"name": "two", "namespace": ns,
                                                               "labels": {"app": "db"}}})
    got = await cms.get("one", ns)
    assert got["data"] == {"a": "1"}
    listed = await cms.list(ns, label_selector="app in (web)")
    assert [o["metadata"]["name"] for o in listed["items"]] == ["one"]
    assert listed["metadata"]["resourceVersion"]
    got["data"]["b"] = "2"
    updated = await cms.update(got)
    assert updated["data"] == {"a": "1", "b": "2"}
    merged = await cms.patch("one", {"data": {"c": "3"}}, namespace=ns)
    assert merged["data"] == {"a": "1", "b": "2", "c": "3"}
    jsonp = await cms.patch("one", [{"op": "remove", "path": "/data/a"}], "json", namespace=ns)
    assert "a" not in jsonp["data"]

    with pytest.raises(StatusError) as e:
        await cms.create(_cm("one"), namespace=ns)
    assert (e.value.code, e.value.reason, e.value.message) == (409, "AlreadyExists", 'configmaps "one" already exists')
    stale = dict(got, metadata=dict(got["metadata"], resourceVersion=created["metadata"]["resourceVersion"]))
    with pytest.raises(StatusError) as e:
        await cms.update(stale)
    assert e.value.code == 409 and e.value.reason == "Conflict"
    with pytest.raises(StatusError) as e:
        await cms.list(ns, label_selector="a b")
    assert e.value.code == 400 and "found 'b', expected: in, notin, =, ==, !=, gt, lt" in e.value.message

    page = await cms.list(ns, limit=1, label_selector="app")
    assert len(page["items"]) == 1 and page["metadata"].get("continue")
    rest = await cms.list(ns, limit=1, label_selector="app", continue_=page["metadata"]["continue"])
    assert [o["metadata"]["name"] for o in page["items"] + rest["items"]] == ["one", "two"]

    await cms.delete("one", ns)
    with pytest.raises(StatusError) as e:
        await cms.get("one", ns)
    assert (e.value.code, e.value.reason, e.value.message) == (404, "NotFound", 'configmaps "one" not found')
    assert e.value.details == {"name": "one", "kind": "configmaps"}
    await cms.delete_collection(ns, label_selector="app=db")
    assert (await cms.list(ns))["items"] == []


@e2e
async def test_watch_streams_events_from_a_resource_version(client: Client, ns: str) -> None:
    cms = client.configmaps
    rv = (await cms.list(ns))["metadata"]["resourceVersion"]
    seen: list[tuple[str, str]] = []

    async def consume() -> None:
        async for etype, obj in cms.watch(ns, resource_version=rv, timeout_seconds=20):
            if etype == "BOOKMARK":
                continue
            seen.append((etype, obj["metadata"]["name"]))
            if len(seen) == 3:
                return

    task = asyncio.ensure_future(consume())
    await cms.create(_cm("w"), namespace=ns)
    await cms.patch("w", {"data": {"x": "1"}}, namespace=ns)
    await cms.delete("w", ns)
    await asyncio.wait_for(task, 20)
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]

    # push revision 1 out of the server's watch history (50 events in these clusters)
    await cms.create(_cm("filler"), namespace=ns)
    for i in range(60):
        await cms.patch("filler", {"data": {"i": str(i)}}, namespace=ns)
    with pytest.raises(StatusError) as e:
        async for _ in cms.watch(ns, resource_version="1", timeout_seconds=5):
            pass
    assert e.value.code == 410


class _GoneOnce:
    """Wraps a transport so that the informer's first watch breaks with 410 Gone when told to."""

    def __init__(self, inner: object):
        self.inner = inner
        self.cut = asyncio.Event()
        self.watches = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def watch(self, *args, **kwargs):
        self.watches += 1
        if self.watches == 1:
            await self.cut.wait()
            raise StatusError(410, "Expired", "too old resource version")
        async for ev in self.inner.watch(*args, **kwargs):
            yield ev


async def _until(cond: Callable[[], bool], timeout: float = 15) -> None:
    for _ in range(int(timeout / 0.02)):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


@e2e
async def test_informer_relists_after_gone_and_diffs_the_cache(client: Client, ns: str) -> None:
    cms = client.configmaps
    owner = await cms.create(_cm("owner"), namespace=ns)
    child = _cm("a")
    child["metadata"]["ownerReferences"] = [new_controller_ref(owner, "ConfigMap", "v1")]
    await cms.create(child, namespace=ns)
    await cms.create(_cm("b"), namespace=ns)

    flaky = _GoneOnce(client.transport)
    factory = SharedInformerFactory(Client(flaky), namespace=ns)
    inf = factory.informer("", "v1", "configmaps")
    assert factory.informer("", "v1", "configmaps") is inf  # shared
    inf.store.add_index("owner", index_by_owner_uid)
    log: list[tuple[str, str]] = []
    inf.add_handler(on_add=lambda o: log.append(("add", o["metadata"]["name"])),
                    on_update=lambda old, new: log.append(("update", new["metadata"]["name"])),
                    on_delete=lambda o: log.append(("delete", o["metadata"]["name"])))
    await factory.start()
    assert await factory.wait_for_sync(15)
    await _until(lambda: len(log) >= 3)
    assert sorted(log) == [("add", "a"), ("add", "b"), ("add", "owner")]
    assert inf.store.get(ns, "a")["kind"] == "ConfigMap"  # list items get their kind back
    assert [o["metadata"]["name"] for o in inf.store.by_index("owner", owner["metadata"]["uid"])] == ["a"]
    assert [o["metadata"]["name"] for o in inf.store.list(ns, parse_label_selector("!nothing"))] != []

    # changes the informer cannot see while its watch is stuck, then 410 Gone: the relist must diff
    log.clear()
    await cms.delete("b", ns)
    await cms.patch("a", {"data": {"v": "2"}}, namespace=ns)
    await cms.create(_cm("c"), namespace=ns)
    flaky.cut.set()
    await _until(lambda: len(log) >= 3)
    assert sorted(log) == [("add", "c"), ("delete", "b"), ("update", "a")]
    assert inf.store.get(ns, "b") is None and inf.store.get(ns, "a")["data"] == {"v": "2"}

    # and the watch that follows the relist keeps the cache current
    log.clear()
    await cms.create(_cm("d"), namespace=ns)
    await _until(lambda: ("add", "d") in log)
    await factory.stop()


@e2e
async def test_event_recorder_aggregates_repeats(client: Client, ns: str) -> None:
    cm = await client.configmaps.create(_cm("evented"), namespace=ns)
    rec = EventRecorder(client, component="test-controller")
    rec.event(cm, "Normal", "Tested", "first")
    rec.event(cm, "Normal", "Tested", "first")
    rec.event(cm, "Warning", "Failed", "second")
    await rec.flush()
    events = (await client.events.list(ns, field_selector="involvedObject.name=evented"))["items"]
    by_reason = {e["reason"]: e for e in events}
    assert sorted(by_reason) == ["Failed", "Tested"]
    tested = by_reason["Tested"]
    assert tested["count"] == 2 and tested["type"] == "Normal" and tested["message"] == "first"
    assert tested["metadata"]["name"].startswith("evented.")
    assert tested["source"] == {"component": "test-controller"} and tested["reportingComponent"] == "test-controller"
    assert tested["involvedObject"] == {"kind": "ConfigMap", "namespace": ns, "name": "evented", "apiVersion": "v1",
                                        "uid": cm["metadata"]["uid"],
                                        "resourceVersion": cm["metadata"]["resourceVersion"]}
    await rec.stop()


@e2e
async def test_pod_binding_and_field_selectors(client: Client, ns: str) -> None:
    pods = client.pods
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": ns},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    await pods.create(pod)
    unbound = await pods.list(ns, field_selector="spec.nodeName=")
    assert [p["metadata"]["name"] for p in unbound["items"]] == ["p"]
    await pods.create_subresource("p", "binding", {
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p", "namespace": ns},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}}, namespace=ns)
    assert (await pods.get("p", ns))["spec"]["nodeName"] == "node-1"
    bound = await pods.list(ns, field_selector="spec.nodeName=node-1")
    assert len(bound["items"]) == 1
    with pytest.raises(StatusError) as e:
        await pods.list(ns, field_selector="spec.foo=1")
    assert e.value.code == 400 and e.value.message == "field label not supported: spec.foo"


@e2e
async def test_scale_subresource_and_status(client: Client, ns: str) -> None:
    deps = client.deployments
    labels = {"app": "s"}
    await deps.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                       "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                                "template": {"metadata": {"labels": labels},
                                             "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}},
                      namespace=ns)
    scale = await deps.get_subresource("d", "scale", ns)
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 1
    scale["spec"]["replicas"] = 3
    await deps.update_subresource("d", "scale", scale, ns)
    dep = await deps.get("d", ns)
    assert dep["spec"]["replicas"] == 3
    dep["status"] = {"replicas": 3, "observedGeneration": dep["metadata"]["generation"]}
    dep["spec"]["replicas"] = 9  # ignored by the status subresource
    after = await deps.update_status(dep)
    assert after["status"]["replicas"] == 3 and after["spec"]["replicas"] == 3
