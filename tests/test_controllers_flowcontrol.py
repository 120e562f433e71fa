"""FlowSchema status: given the default FlowSchemas and one of a user's, when the PriorityLevelConfiguration a
schema names exists or not, then its Dangling condition (kubectl's MISSINGPL column) says so as upstream's."""

from __future__ import annotations

import json
import uuid

from test_controllers_support import wait_until


def _missingpl(cluster, name: str) -> str:
    lines = cluster.kubectl("get", "flowschema", name).stdout.splitlines()
    return lines[1].split()[-1] if len(lines) > 1 else ""


def test_dangling_condition_follows_the_priority_level(cluster):
    wait_until(lambda: _missingpl(cluster, "exempt") == "False", what="defaults not dangling")
    name, level = "fs-" + uuid.uuid4().hex[:6], "pl-" + uuid.uuid4().hex[:6]
    cluster.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema", "metadata": {"name": name},
        "spec": {"priorityLevelConfiguration": {"name": level}, "matchingPrecedence": 5000,
                 "rules": [{"subjects": [{"kind": "User", "user": {"name": "nobody"}}],
                            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}]}}))
    try:
        wait_until(lambda: _missingpl(cluster, name) == "True", what="dangling")
        fs = json.loads(cluster.kubectl("get", "flowschema", name, "-o", "json").stdout)
        cond = next(c for c in fs["status"]["conditions"] if c["type"] == "Dangling")
        assert cond["reason"] == "NotFound" and cond["message"] == (
            f'This FlowSchema references the PriorityLevelConfiguration object named "{level}" but there is no '
            "such object")
        cluster.kubectl("create", "-f", "-", input=json.dumps({
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration",
            "metadata": {"name": level}, "spec": {"type": "Limited", "limited": {
                "nominalConcurrencyShares": 5, "limitResponse": {"type": "Reject"}}}}))
        wait_until(lambda: _missingpl(cluster, name) == "False", what="found")
        cluster.kubectl("delete", "prioritylevelconfiguration", level)
        wait_until(lambda: _missingpl(cluster, name) == "True", what="dangling again")
    finally:
        cluster.kubectl("delete", "flowschema", name, check=False)
        cluster.kubectl("delete", "prioritylevelconfiguration", level, check=False)
