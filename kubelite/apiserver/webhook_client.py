"""Calling a webhook's `clientConfig` (admission webhooks, CRD conversion webhooks) as upstream does.

A clientConfig names either a `url` or a Service; a Service is resolved to one of its ready endpoints
(upstream's `--enable-aggregator-routing`), reached over HTTPS with the TLS server name
`<svc>.<ns>.svc`, and verified against `caBundle`. One pool of kept-alive connections per client.
Failures are raised as WebhookCallError worded as upstream's `failed to call webhook: ...`.
"""

from __future__ import annotations

import base64
import ssl
from typing import Any

import aiohttp
import orjson

Obj = dict[str, Any]


class WebhookCallError(Exception):
    """The webhook could not be called or gave no usable answer (upstream's ErrCallingWebhook)."""


class WebhookClient:
    """Posts JSON to webhooks; `store` is the API server's store, read for Services and Endpoints."""

    def __init__(self, store: Any):
        self.store = store
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, client_config: Obj, body: Obj, timeout: float) -> Obj:
        """POST `body` to the webhook (with `?timeout=Ns`, as upstream appends it); its decoded answer."""
        url, server_name = await self._url(client_config)
        url += ("&" if "?" in url else "?") + f"timeout={int(timeout)}s"
        ctx = self._ssl(str(client_config.get("caBundle") or ""))
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(url, data=orjson.dumps(body), ssl=ctx, server_hostname=server_name,
                                          timeout=aiohttp.ClientTimeout(total=timeout),
                                          headers={"Content-Type": "application/json",
                                                   "Accept": "application/json"}) as r:
                raw = await r.read()
                if r.status != 200:
                    raise WebhookCallError(f'failed to call webhook: Post "{url}": the server responded '
                                           f"with the status code {r.status}")
        except TimeoutError:
            raise WebhookCallError(f'failed to call webhook: Post "{url}": context deadline exceeded') from None
        except aiohttp.ClientError as e:
            raise WebhookCallError(f'failed to call webhook: Post "{url}": {e}') from None
        try:
            out = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise WebhookCallError("received invalid webhook response") from None
        if not isinstance(out, dict):
            raise WebhookCallError("received invalid webhook response")
        return out

    async def _url(self, client_config: Obj) -> tuple[str, str | None]:
        """The URL to post to, and the TLS server name when it is a Service's (`svc.ns.svc`)."""
        if client_config.get("url"):
            return str(client_config["url"]), None
        svc_ref = client_config.get("service") or {}
        ns, svc_name = svc_ref.get("namespace", ""), svc_ref.get("name", "")
        port = int(svc_ref.get("port") or 443)
        path = svc_ref.get("path") or ""
        svc = await self.store.get(f"/registry/core/services/{ns}/{svc_name}")
        if svc is None:
            raise WebhookCallError(f'failed to call webhook: service "{svc_name}" not found')
        target = None
        for p in (svc.get("spec") or {}).get("ports") or ():
            if p.get("port") == port:
                target = p
        if target is None:
            raise WebhookCallError(f"failed to call webhook: no service port {port} found for service \"{svc_name}\"")
        ep = await self.store.get(f"/registry/core/endpoints/{ns}/{svc_name}") or {}
        for subset in ep.get("subsets") or ():
            for address in subset.get("addresses") or ():
                for ep_port in subset.get("ports") or ():
                    if ep_port.get("name", "") == target.get("name", "") or len(subset.get("ports")) == 1:
                        return (f"https://{address['ip']}:{ep_port['port']}{path}",
                                f"{svc_name}.{ns}.svc")
        raise WebhookCallError(f'failed to call webhook: service "{ns}/{svc_name}" has no ready endpoints')

    def _ssl(self, ca_bundle: str) -> ssl.SSLContext:
        ctx = self._contexts.get(ca_bundle)
        if ctx is None:
            ctx = ssl.create_default_context()
            if ca_bundle:
                try:
                    ctx.load_verify_locations(cadata=base64.b64decode(ca_bundle).decode())
                except (ValueError, ssl.SSLError) as e:
                    raise WebhookCallError(f"failed to call webhook: invalid caBundle: {e}") from None
            self._contexts[ca_bundle] = ctx
        return ctx
