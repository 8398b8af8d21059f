"""What follows from the roles once ``plan`` decided them (pure): routing, labels, bounds.

- :func:`route`: the head and serve Services built for the cluster that takes traffic, created
  or patched where they differ, and a serve Service left behind by a renamed
  ``spec.serveService`` deleted;
- :func:`head_labels`: each head Pod's ``ray.io/serve`` label from its Serve proxy's health
  (``"false"`` always with ``excludeHeadPodFromServeSvc``), as KubeRay sets it;
- :func:`bounds`: worker groups' ``minReplicas``/``maxReplicas`` patched into a running cluster
  in place, matched by group name, each group guarded by a ``test`` of its name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.actions import Create, Delete, JsonPatch, MergePatch, RecordEvent, Ref, ref_of
from reconciler.rayservice import build, names
from reconciler.rayservice.observed import ClusterView, Observed

__all__ = ["bounds", "head_labels", "route"]


def route(o: Observed, target: ClusterView) -> list[Any]:
    """Point both Services at ``target`` (creating them the first time)."""
    rs = o.rayservice
    why = f"route to {target.name}"
    actions: list[Any] = []
    for desired in (build.head_service(rs, target.obj), build.serve_service(rs, target.obj)):
        live = o.services.get(desired["metadata"]["name"])
        if live is None:
            actions.append(Create(desired, why=why))
            continue
        patch = build.service_patch(desired, live)
        if patch is not None:
            actions.append(MergePatch(ref_of(live, precondition=True), patch, why=why))
    serve_name = names.serve_service_name(rs)
    serve_label = f"{o.meta['name']}-serve"
    for name, live in o.services.items():
        labels = (live.get("metadata") or {}).get("labels") or {}
        if labels.get(names.SERVE_LABEL) == serve_label and name != serve_name:
            actions.append(
                Delete(ref_of(live, precondition=True), why="spec.serveService renamed it")
            )
    return actions


def head_labels(o: Observed, clusters: Iterable[ClusterView | None]) -> list[Any]:
    """Patch each head's ``ray.io/serve`` label where its proxy health says otherwise."""
    exclude = bool(o.spec.get("excludeHeadPodFromServeSvc"))
    actions: list[Any] = []
    for cluster in clusters:
        if cluster is None or cluster.head is None or cluster.proxy_healthy is None:
            continue
        want = "false" if exclude else ("true" if cluster.proxy_healthy else "false")
        if cluster.head.serve_label != want:
            ref = Ref("v1", "Pod", str(o.meta["namespace"]), cluster.head.name)
            patch = {"metadata": {"labels": {names.SERVE_LABEL: want}}}
            actions.append(MergePatch(ref, patch, why="the head's Serve proxy health"))
    return actions


def bounds(o: Observed, clusters: Iterable[ClusterView | None], rs_ref: Ref) -> list[Any]:
    """Patch the goal's worker-group bounds into each running cluster where they differ."""
    goal_groups = {
        g.get("groupName"): g
        for g in o.goal.cluster_spec.get("workerGroupSpecs") or []
        if isinstance(g, Mapping)
    }
    actions: list[Any] = []
    for cluster in clusters:
        if cluster is None:
            continue
        ops: list[dict[str, Any]] = []
        for index, group in enumerate(cluster.spec.get("workerGroupSpecs") or []):
            want = goal_groups.get(group.get("groupName"))
            if want is None:
                continue
            changed = [
                key
                for key in ("minReplicas", "maxReplicas")
                if key in want and group.get(key) != want[key]
            ]
            if not changed:
                continue
            base = f"/spec/workerGroupSpecs/{index}"
            ops.append({"op": "test", "path": f"{base}/groupName", "value": group["groupName"]})
            ops.extend(
                {"op": "add", "path": f"{base}/{key}", "value": want[key]} for key in changed
            )
        if ops:
            ref = ref_of(cluster.obj, precondition=True)
            actions.append(JsonPatch(ref, ops, why="scale bounds changed"))
            actions.append(
                RecordEvent(
                    rs_ref,
                    "Normal",
                    "ScaleBoundsUpdated",
                    f"minReplicas/maxReplicas applied to {cluster.name} in place",
                )
            )
    return actions
