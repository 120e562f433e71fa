"""Transports: how a `Client` reaches the API server, swappable as httpx's transports are.

A transport speaks in API verbs on a (group, version, plural) rather than in raw HTTP, so that
`InProcessTransport` can call the API server's service object directly while `HTTPTransport`
maps the same calls onto REST paths. Both raise `StatusError` rebuilt from the server's Status.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import weakref
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import orjson

from kubelite.api.errors import StatusError

GVR = tuple[str, str, str]  # (group, version, plural)

PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}

# HTTP code -> Status reason, for error bodies that are not a Status (proxies, plain-text failures)
_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
            406: "NotAcceptable", 409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType",
            422: "Invalid", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
            504: "Timeout"}


def status_error_from(code: int, body: Any) -> StatusError:
    """Rebuild a StatusError from a response body the way client-go's errors.FromObject does."""
    if isinstance(body, dict) and body.get("kind") == "Status":
        return StatusError(int(body.get("code") or code), body.get("reason") or _REASONS.get(code, "Unknown"),
                           body.get("message") or "", body.get("details"))
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body or "")
    reason = _REASONS.get(code, "Unknown")
    return StatusError(code, reason, text.strip() or f"the server responded with the status code {code}")


class Transport:
    """What a Client needs from a transport; every method raises StatusError on an API failure."""

    async def get(self, gvr: GVR, namespace: str | None, name: str, subresource: str = "") -> dict:
        raise NotImplementedError

    async def list(self, gvr: GVR, namespace: str | None, *, label_selector: str = "", field_selector: str = "",
                   limit: int = 0, continue_: str = "", resource_version: str = "") -> dict:
        raise NotImplementedError

    async def create(self, gvr: GVR, namespace: str | None, body: dict, *, subresource: str = "", name: str = "",
                     dry_run: bool = False, field_manager: str = "") -> dict:
        raise NotImplementedError

    async def update(self, gvr: GVR, namespace: str | None, name: str, body: dict, *, subresource: str = "",
                     dry_run: bool = False, field_manager: str = "") -> dict:
        raise NotImplementedError

    async def patch(self, gvr: GVR, namespace: str | None, name: str, content_type: str, body: bytes, *,
                    subresource: str = "", dry_run: bool = False, field_manager: str = "",
                    force: bool = False) -> dict:
        raise NotImplementedError

    async def delete(self, gvr: GVR, namespace: str | None, name: str, options: dict | None = None, *,
                     dry_run: bool = False) -> dict:
        raise NotImplementedError

    async def delete_collection(self, gvr: GVR, namespace: str | None, options: dict | None = None, *,
                                label_selector: str = "", field_selector: str = "") -> dict:
        raise NotImplementedError

    def watch(self, gvr: GVR, namespace: str | None, *, resource_version: str = "", label_selector: str = "",
              field_selector: str = "", allow_bookmarks: bool = False, timeout_seconds: int | None = None,
              trim_managed_fields: bool = False) -> AsyncIterator[tuple[str, dict]]:
        """Events as (type, object); an ERROR event ends the stream by raising its StatusError.
        `trim_managed_fields` drops metadata.managedFields from the objects (what informers of
        kube-controller-manager keep)."""
        raise NotImplementedError

    async def close(self) -> None:
        return None


# ---------------------------------------------------------------------------------------------

def _fast_copy(v: Any) -> Any:
    """Deep copy of plain JSON data, several times faster than copy.deepcopy."""
    if isinstance(v, dict):
        return {k: _fast_copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_fast_copy(x) for x in v]
    return v


def without_managed_fields(obj: Any) -> Any:
    """`obj` without metadata.managedFields: a shallow view (nothing is copied or mutated), to be
    copied or read only."""
    if isinstance(obj, dict):
        meta = obj.get("metadata")
        if isinstance(meta, dict) and "managedFields" in meta:
            return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


def _copy_out(v: Any) -> Any:
    """Copy of what the service hands back (stored objects, plain JSON): an orjson round trip is
    about 2.5 times faster than `_fast_copy` and yields what an HTTP client would decode; anything
    orjson cannot encode, and any other value (a log's text, a stream), is copied as before."""
    if not isinstance(v, (dict, list)):
        return v
    try:
        return orjson.loads(orjson.dumps(v))
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _fast_copy(v)


class _WatchCopies:
    """One copy of each watch event's object for all in-process watchers of one service.

    The service hands every watcher the very object its watch cache holds (never mutated), and the
    controllers, the scheduler and the simulated nodes each watch pods: copying it once per watcher
    was a fifth of the server's CPU in a 1,000-pod scale-up, once per event half that. Watchers are informers,
    whose cached objects are read-only by contract, so sharing the copy between them is safe; the
    service's own object stays private. Keyed by identity, holding the original so an id is not reused
    while its entry lives; the oldest entries go first, and a watcher lagging further behind simply
    copies again.
    """

    def __init__(self, size: int = 4096):
        self.size = size
        self._entries: dict[tuple[int, bool], tuple[Any, Any]] = {}

    def copy(self, obj: Any, trim_managed_fields: bool = False) -> Any:
        key = (id(obj), trim_managed_fields)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is obj:
            return entry[1]
        out = _copy_out(without_managed_fields(obj) if trim_managed_fields else obj)
        if isinstance(obj, dict):
            self._entries[key] = (obj, out)
            if len(self._entries) > self.size:
                del self._entries[next(iter(self._entries))]
        return out


# service -> its shared watch copies; weak, so a stopped control plane's cache goes with it
_watch_copies: weakref.WeakKeyDictionary[Any, _WatchCopies] = weakref.WeakKeyDictionary()


class InProcessTransport(Transport):
    """Calls `kubelite.apiserver.service.APIService` directly: no HTTP, no serialization.

    Results and request bodies are copied, since the service's objects are shared with the store's
    cache and its watch events with every other watcher. A watch event's copy is shared by the
    in-process watchers of the same service (`_WatchCopies`): treat watched objects as read-only.
    """

    def __init__(self, service: Any):
        self.service = service
        try:
            self._copies = _watch_copies.setdefault(service, _WatchCopies())
        except TypeError:  # a service that cannot be weakly referenced: copies of its own
            self._copies = _WatchCopies()

    def _res(self, gvr: GVR) -> Any:
        res = self.service.registry.get(*gvr)
        if res is None:
            raise StatusError(404, "NotFound", "the server could not find the requested resource",
                              {"group": gvr[0], "kind": gvr[2]} if gvr[0] else {"kind": gvr[2]})
        return res

    @staticmethod
    def _ns(res: Any, namespace: str | None) -> str | None:
        return (namespace or None) if res.namespaced else None

    async def get(self, gvr, namespace, name, subresource=""):
        res = self._res(gvr)
        return _copy_out(await self.service.get(res, self._ns(res, namespace), name, subresource=subresource))

    async def list(self, gvr, namespace, *, label_selector="", field_selector="", limit=0, continue_="",
                   resource_version=""):
        res = self._res(gvr)
        out = await self.service.list(res, self._ns(res, namespace), label_selector=label_selector,
                                      field_selector=field_selector, limit=limit, continue_=continue_,
                                      resource_version=resource_version)
        return _copy_out(out)

    async def create(self, gvr, namespace, body, *, subresource="", name="", dry_run=False, field_manager=""):
        res = self._res(gvr)
        out = await self.service.create(res, self._ns(res, namespace), _fast_copy(body), subresource=subresource,
                                        name=name, dry_run=dry_run, field_manager=field_manager)
        return _copy_out(out)

    async def update(self, gvr, namespace, name, body, *, subresource="", dry_run=False, field_manager=""):
        res = self._res(gvr)
        out = await self.service.update(res, self._ns(res, namespace), name, _fast_copy(body),
                                        subresource=subresource, dry_run=dry_run, field_manager=field_manager)
        return _copy_out(out)

    async def patch(self, gvr, namespace, name, content_type, body, *, subresource="", dry_run=False,
                    field_manager="", force=False):
        res = self._res(gvr)
        out = await self.service.patch(res, self._ns(res, namespace), name, content_type, body,
                                       subresource=subresource, dry_run=dry_run, field_manager=field_manager,
                                       force=force)
        return _copy_out(out)

    async def delete(self, gvr, namespace, name, options=None, *, dry_run=False):
        res = self._res(gvr)
        out = await self.service.delete(res, self._ns(res, namespace), name, _fast_copy(options), dry_run=dry_run)
        return _copy_out(out)

    async def delete_collection(self, gvr, namespace, options=None, *, label_selector="", field_selector=""):
        res = self._res(gvr)
        out = await self.service.delete_collection(res, self._ns(res, namespace), _fast_copy(options),
                                                   label_selector=label_selector, field_selector=field_selector)
        return _copy_out(out)

    async def watch(self, gvr, namespace, *, resource_version="", label_selector="", field_selector="",
                    allow_bookmarks=False, timeout_seconds=None, trim_managed_fields=False):
        res = self._res(gvr)
        gen = self.service.watch(res, self._ns(res, namespace), resource_version=resource_version,
                                 label_selector=label_selector, field_selector=field_selector,
                                 allow_bookmarks=allow_bookmarks)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds if timeout_seconds else None
        try:
            while True:
                if deadline is None:
                    item = await gen.__anext__()
                else:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        return
                    try:
                        item = await asyncio.wait_for(gen.__anext__(), remaining)
                    except TimeoutError:
                        return
                etype, obj = item
                if etype == "ERROR":
                    raise status_error_from(int((obj or {}).get("code") or 500), obj)
                yield etype, (_copy_out(obj) if etype == "BOOKMARK" else self._copies.copy(obj, trim_managed_fields))
        except StopAsyncIteration:
            return
        finally:
            aclose = getattr(gen, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()


# ---------------------------------------------------------------------------------------------

def resource_path(gvr: GVR, namespace: str | None, name: str = "", subresource: str = "") -> str:
    """REST path: /api/v1/namespaces/ns/pods/name/status or /apis/apps/v1/deployments."""
    group, version, plural = gvr
    parts = [f"/apis/{group}/{version}" if group else f"/api/{version}"]
    if namespace:
        parts.append(f"namespaces/{quote(namespace, safe='')}")
    parts.append(plural)
    if name:
        parts.append(quote(name, safe=""))
        if subresource:
            parts.append(subresource)
    return "/".join(parts)


class HTTPTransport(Transport):
    """aiohttp over a keep-alive connection pool; JSON through orjson; watch as a streamed response.

    The session is created lazily inside the running loop, so a transport can be built anywhere.
    """

    def __init__(self, server: str, *, ssl_context: ssl.SSLContext | bool | None = None, token: str | None = None,
                 token_file: str | None = None, basic_auth: tuple[str, str] | None = None,
                 pool_size: int = 100, request_timeout: float = 60.0, user_agent: str = "kubelite-client"):
        self.server = server.rstrip("/")
        self._ssl = ssl_context
        self._token = token
        self._token_file = token_file
        self._basic = basic_auth
        self._pool_size = pool_size
        self._timeout = request_timeout
        self._user_agent = user_agent
        self._session: Any = None

    def _headers(self) -> dict[str, str]:
        h = {"Accept": "application/json", "User-Agent": self._user_agent}
        token = self._token
        if self._token_file:  # re-read: projected service-account tokens rotate
            with contextlib.suppress(OSError), open(self._token_file) as f:
                token = f.read().strip()
        if token:
            h["Authorization"] = f"Bearer {token}"
        elif self._basic:
            import base64

            h["Authorization"] = "Basic " + base64.b64encode(f"{self._basic[0]}:{self._basic[1]}".encode()).decode()
        return h

    def _get_session(self) -> Any:
        if self._session is None or self._session.closed:
            import aiohttp

            connector = aiohttp.TCPConnector(limit=self._pool_size, ssl=self._ssl if self._ssl is not None else True,
                                             keepalive_timeout=60)
            self._session = aiohttp.ClientSession(connector=connector, json_serialize=lambda o: orjson.dumps(o).decode())
        return self._session

    async def _request(self, method: str, path: str, params: dict | None = None, body: Any = None,
                       content_type: str = "application/json") -> dict:
        import aiohttp

        data = None
        headers = self._headers()
        if body is not None:
            data = body if isinstance(body, bytes) else orjson.dumps(body)
            headers["Content-Type"] = content_type
        session = self._get_session()
        try:
            async with session.request(method, self.server + path, params=_clean(params), data=data,
                                       headers=headers,
                                       timeout=aiohttp.ClientTimeout(total=self._timeout)) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise StatusError(503, "ServiceUnavailable", f"{method} {self.server}{path}: {e or type(e).__name__}") from e
        try:
            parsed = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            parsed = raw
        if status >= 400:
            raise status_error_from(status, parsed)
        if not isinstance(parsed, dict):
            raise StatusError(500, "InternalError", f"unexpected response body from {method} {path}")
        return parsed

    async def get(self, gvr, namespace, name, subresource=""):
        return await self._request("GET", resource_path(gvr, namespace, name, subresource))

    async def list(self, gvr, namespace, *, label_selector="", field_selector="", limit=0, continue_="",
                   resource_version=""):
        return await self._request("GET", resource_path(gvr, namespace), {
            "labelSelector": label_selector, "fieldSelector": field_selector, "limit": limit or None,
            "continue": continue_, "resourceVersion": resource_version})

    async def create(self, gvr, namespace, body, *, subresource="", name="", dry_run=False, field_manager=""):
        return await self._request("POST", resource_path(gvr, namespace, name, subresource),
                                   {"dryRun": "All" if dry_run else None, "fieldManager": field_manager}, body)

    async def update(self, gvr, namespace, name, body, *, subresource="", dry_run=False, field_manager=""):
        return await self._request("PUT", resource_path(gvr, namespace, name, subresource),
                                   {"dryRun": "All" if dry_run else None, "fieldManager": field_manager}, body)

    async def patch(self, gvr, namespace, name, content_type, body, *, subresource="", dry_run=False,
                    field_manager="", force=False):
        return await self._request("PATCH", resource_path(gvr, namespace, name, subresource), {
            "dryRun": "All" if dry_run else None, "fieldManager": field_manager,
            "force": "true" if force else None}, body, content_type)

    async def delete(self, gvr, namespace, name, options=None, *, dry_run=False):
        return await self._request("DELETE", resource_path(gvr, namespace, name),
                                   {"dryRun": "All" if dry_run else None}, options)

    async def delete_collection(self, gvr, namespace, options=None, *, label_selector="", field_selector=""):
        return await self._request("DELETE", resource_path(gvr, namespace),
                                   {"labelSelector": label_selector, "fieldSelector": field_selector}, options)

    async def watch(self, gvr, namespace, *, resource_version="", label_selector="", field_selector="",
                    allow_bookmarks=False, timeout_seconds=None, trim_managed_fields=False):
        import aiohttp

        params = _clean({"watch": "true", "resourceVersion": resource_version, "labelSelector": label_selector,
                         "fieldSelector": field_selector, "allowWatchBookmarks": "true" if allow_bookmarks else None,
                         "timeoutSeconds": timeout_seconds})
        session = self._get_session()
        # no total timeout: a watch lasts as long as the server keeps it; the socket read is bounded
        # generously so that a silently dead connection is noticed (the server sends bookmarks/events).
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10,
                                        sock_read=(timeout_seconds + 30) if timeout_seconds else None)
        try:
            resp = await session.get(self.server + resource_path(gvr, namespace), params=params,
                                     headers=self._headers(), timeout=timeout)
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise StatusError(503, "ServiceUnavailable", f"watch {resource_path(gvr, namespace)}: {e}") from e
        try:
            if resp.status >= 400:
                raw = await resp.read()
                try:
                    body = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    body = raw
                raise status_error_from(resp.status, body)
            buf = b""
            try:
                async for chunk in resp.content.iter_any():
                    buf += chunk
                    while True:
                        nl = buf.find(b"\n")
                        if nl < 0:
                            break
                        line, buf = buf[:nl], buf[nl + 1:]
                        if line.strip():
                            yield _watch_event(line, trim_managed_fields)
            except (aiohttp.ClientError, TimeoutError, OSError) as e:
                raise StatusError(503, "ServiceUnavailable", f"watch stream broken: {e or type(e).__name__}") from e
            if buf.strip():
                yield _watch_event(buf, trim_managed_fields)
        finally:
            resp.close()  # a watch left mid-stream cannot go back to the pool

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


def _watch_event(line: bytes, trim_managed_fields: bool = False) -> tuple[str, dict]:
    ev = orjson.loads(line)
    etype, obj = ev.get("type"), ev.get("object") or {}
    if etype == "ERROR":
        raise status_error_from(int(obj.get("code") or 500), obj)
    if trim_managed_fields and isinstance(obj.get("metadata"), dict):
        obj["metadata"].pop("managedFields", None)  # decoded here: ours to change
    return etype, obj


def _clean(params: dict | None) -> dict | None:
    if not params:
        return None
    return {k: str(v) for k, v in params.items() if v not in (None, "", 0, False)}
