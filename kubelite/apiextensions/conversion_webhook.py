"""CRD conversion through a webhook (spec.conversion.strategy Webhook), as upstream's webhook converter.

The API server sends a ConversionReview (the newest version both sides know, v1 before v1beta1) with
the objects and the desired apiVersion; the webhook answers convertedObjects in the same order. Like
upstream, an answer is checked (uid, result, count, apiVersion and kind of each object) and only the
labels and annotations of a converted object's metadata are kept: the rest is the original's, so a
webhook can never rename or move an object. Any failure is a 500 worded as upstream's
`conversion webhook for <group/version>, Kind=<kind> failed: ...`.
"""

from __future__ import annotations

import uuid
from typing import Any

from kubelite.api import errors
from kubelite.api.registry import Resource
from kubelite.apiserver.webhook_client import WebhookCallError, WebhookClient

Obj = dict[str, Any]

TIMEOUT_SECONDS = 30  # upstream's conversion webhook timeout


async def convert(client: WebhookClient, res: Resource, objects: list[Obj], api_version: str) -> list[Obj]:
    """`objects` (each in some version of res's kind) converted to `api_version` by the CRD's webhook."""
    webhook = res.conversion_webhook or {}
    versions = webhook.get("conversionReviewVersions") or ["v1beta1"]
    review_version = next((f"apiextensions.k8s.io/{v}" for v in ("v1", "v1beta1") if v in versions), None)
    source = (objects[0].get("apiVersion") if objects else "") or res.storage_version
    gvk = f"{source}, Kind={res.kind}"
    if review_version is None:
        raise errors.new_internal(f"conversion webhook for {gvk} failed: webhook does not accept known "
                                  f"ConversionReview versions (v1, v1beta1)")
    uid = str(uuid.uuid4())
    review = {"apiVersion": review_version, "kind": "ConversionReview",
              "request": {"uid": uid, "desiredAPIVersion": api_version, "objects": objects}}
    try:
        answer = await client.post(webhook.get("clientConfig") or {}, review, TIMEOUT_SECONDS)
        converted = _check(answer, uid, objects, api_version, res.kind)
    except WebhookCallError as e:
        raise errors.new_internal(f"conversion webhook for {gvk} failed: {e}") from None
    return [_restore_metadata(new, old) for new, old in zip(converted, objects, strict=True)]


def _check(answer: Obj, uid: str, objects: list[Obj], api_version: str, kind: str) -> list[Obj]:
    response = answer.get("response")
    if not isinstance(response, dict):
        raise WebhookCallError("no response provided")
    if response.get("uid") != uid:
        raise WebhookCallError(f'expected response.uid="{uid}", got "{response.get("uid", "")}"')
    result = response.get("result") or {}
    if result.get("status") != "Success":
        raise WebhookCallError(str(result.get("message") or "conversion failed"))
    converted = response.get("convertedObjects")
    if not isinstance(converted, list) or len(converted) != len(objects):
        got = len(converted) if isinstance(converted, list) else 0
        raise WebhookCallError(f"returned {got} objects, expected {len(objects)}")
    for i, obj in enumerate(converted):
        if not isinstance(obj, dict):
            raise WebhookCallError(f"invalid converted object at index {i}")
        if obj.get("apiVersion") != api_version:
            raise WebhookCallError(f"invalid converted object at index {i}: invalid apiVersion "
                                   f'"{obj.get("apiVersion")}", expected "{api_version}"')
        if obj.get("kind") != kind:
            raise WebhookCallError(f'invalid converted object at index {i}: invalid kind "{obj.get("kind")}", '
                                   f'expected "{kind}"')
    return converted


def _restore_metadata(new: Obj, old: Obj) -> Obj:
    """restoreObjectMeta: the original metadata, with the converted object's labels and annotations."""
    meta = dict(old.get("metadata") or {})
    new_meta = new.get("metadata") or {}
    for key in ("labels", "annotations"):
        if new_meta.get(key):
            meta[key] = new_meta[key]
        else:
            meta.pop(key, None)
    out = dict(new)
    out["metadata"] = meta
    return out
