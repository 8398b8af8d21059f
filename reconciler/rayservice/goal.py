"""The goal of a RayService: its target hashes and what to build and submit (pure).

The hashes come from the ``raysvc.io/`` annotations the mutating webhook wrote (the validating
webhook guarantees they match the spec). An object admitted while the webhook was away has none:
then the hashes are computed here with the same ``rayservice`` functions, and the object is
validated too, since nobody else did (``Goal.errors``).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from rayservice import apply_defaults, contract, evaluate, parse_serve_config
from rayservice.memo import Memo
from reconciler.rayservice.observed import Goal

__all__ = ["goal_of"]

_memo: Memo[str, Goal] = Memo(max_chars=1 << 20, max_entries=4096)


def goal_of(rayservice: Mapping[str, Any]) -> Goal:
    """The goal of a RayService object as stored.

    Memoized by what it is computed from: the object (uid), a digest of its spec and the
    hashes the webhook wrote. Status writes and other metadata changes do not recompute it.
    """
    meta = rayservice.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    uid = meta.get("uid")
    key = None
    with contextlib.suppress(TypeError):  # e.g. an integer past 64 bits: not memoized
        spec = orjson.dumps(rayservice.get("spec"), option=orjson.OPT_SORT_KEYS)
        key = (
            f"{uid}/{hashlib.blake2b(spec, digest_size=16).hexdigest()}/"
            f"{annotations.get(contract.CLUSTER_HASH)}/{annotations.get(contract.SERVE_HASH)}"
            if uid
            else None
        )
    found = _memo.get(key) if key else None
    if found is None:
        found = _compute(rayservice)
        if key:
            _memo.put(key, found)
    return found


def _compute(rayservice: Mapping[str, Any]) -> Goal:
    annotations = (rayservice.get("metadata") or {}).get("annotations") or {}
    cluster_hash = annotations.get(contract.CLUSTER_HASH)
    serve_hash = annotations.get(contract.SERVE_HASH)
    computed = cluster_hash is None or serve_hash is None
    errors: tuple[str, ...] = ()
    if computed:
        evaluation = evaluate(rayservice)
        errors = tuple(str(error) for error in evaluation.errors)
        cluster_hash, serve_hash = evaluation.hashes.cluster, evaluation.hashes.serve
    defaulted, _ = apply_defaults(rayservice)
    spec = defaulted.get("spec") or {}
    text = spec.get("serveConfigV2")
    parsed = parse_serve_config(text if isinstance(text, str) else None)
    serve_config = None
    if parsed.canonical is not None and not parsed.empty:
        loaded = orjson.loads(parsed.canonical)
        serve_config = loaded if isinstance(loaded, dict) else None
    cluster_spec = spec.get("rayClusterConfig")
    return Goal(
        cluster_hash=str(cluster_hash) if cluster_hash else None,
        serve_hash=str(serve_hash) if serve_hash else None,
        cluster_spec=cluster_spec if isinstance(cluster_spec, dict) else {},
        serve_config=serve_config,
        computed=computed,
        errors=errors,
    )
