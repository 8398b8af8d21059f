"""One admission of one RayService, end to end: default, validate, classify, annotate.

``evaluate(new, old)`` is what both the webhook (mutate and validate) and ``raysvc check`` call:

1. apply the defaults (``rayservice.defaults``) to ``new`` and to ``old``;
2. check the shape with the models and, if it holds, every rule (``rayservice.rules``) and the
   Serve config (``rayservice.serveconfig``);
3. compute the target hashes and classify the change from ``old`` to ``new``;
4. build the JSON Patch a mutating webhook returns: the defaults, then the ``raysvc.io/``
   annotations of the contract (``rayservice.contract``). An UPDATE that changes nothing in the
   spec keeps the stored ``raysvc.io/change`` (the last real change), so re-applying an
   unchanged manifest patches nothing and the API server sees a no-op.

With ``verify_annotations`` (the validating webhook), ``raysvc.io/`` annotations already on
``new`` must equal what step 3 computes, so they can be neither forged nor stale; absent ones are
fine (the reconciler computes them for objects admitted while the webhook was away).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError

from rayservice import contract
from rayservice.bounds import nesting_error, too_deep
from rayservice.classify import Aspect, Change, Hashes, analyze
from rayservice.clusters import validated_cluster
from rayservice.contract import ChangeClass
from rayservice.defaults import PatchOp, apply_defaults, apply_ops
from rayservice.errors import (
    FieldError,
    FieldWarning,
    Key,
    NotARayServiceError,
    Reason,
    short_repr,
)
from rayservice.explain import explain, summary
from rayservice.models import API_VERSIONS, RayServiceV1, RayServiceV1Alpha1, model_for
from rayservice.rules import validate, warn
from rayservice.serveconfig import SERVE_CONFIG_PATH, parse_serve_config
from rayservice.shape import field_errors

__all__ = ["Evaluation", "evaluate", "parse_rayservice", "require_rayservice"]

RayService = RayServiceV1 | RayServiceV1Alpha1


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The verdict on one RayService and everything a caller needs to act on it."""

    name: str
    namespace: str | None
    api_version: str
    errors: tuple[FieldError, ...]
    warnings: tuple[FieldWarning, ...]
    change: Change
    hashes: Hashes
    patch: tuple[PatchOp, ...]
    """Defaults, then annotations: applying it to the input yields ``mutated``."""
    mutated: Mapping[str, Any]
    consequences: tuple[str, ...]
    """What the change will do, one sentence each (at most 120 characters)."""

    @property
    def allowed(self) -> bool:
        """True when there is no error."""
        return not self.errors

    @property
    def summary(self) -> str:
        """One sentence naming what the change's class does."""
        return summary(self.change)

    def patch_json(self) -> list[dict[str, Any]]:
        """The patch as RFC 6902 JSON."""
        return [op.to_json() for op in self.patch]


def require_rayservice(obj: object) -> Mapping[str, Any]:
    """Return ``obj`` if it is a RayService object; raise ``NotARayServiceError`` otherwise."""
    if not isinstance(obj, Mapping):
        raise NotARayServiceError(f"expected a RayService object, got {type(obj).__name__}")
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if kind != "RayService" or api_version not in API_VERSIONS:
        raise NotARayServiceError(
            f"expected kind RayService in {' or '.join(API_VERSIONS)}, "
            f"got kind {short_repr(kind)} in {short_repr(api_version)}"
        )
    return obj


def parse_rayservice(obj: Mapping[str, Any]) -> tuple[RayService | None, list[FieldError]]:
    """The typed view of a RayService object, or the shape errors that prevent it.

    The ``rayClusterConfig`` (most of a large object) is validated once per distinct content
    and reused; the rest of the object is validated around it.
    """
    model = model_for(str(obj.get("apiVersion")))
    spec = obj.get("spec")
    if isinstance(spec, dict) and isinstance(spec.get("rayClusterConfig"), dict):
        known = validated_cluster(spec["rayClusterConfig"])
        if known is not None:
            view = {**obj, "spec": {**spec, "rayClusterConfig": known}}
            try:
                return model.model_validate(view), []
            except ValidationError:
                pass  # the errors are elsewhere: validate the whole object, for their paths
    try:
        return model.model_validate(obj), []
    except ValidationError as exc:
        errors = field_errors(exc, model)
        text = (
            (obj.get("spec") or {}).get("serveConfigV2")
            if isinstance(obj.get("spec"), Mapping)
            else None
        )
        if isinstance(text, Mapping | list):
            errors = [
                FieldError(
                    SERVE_CONFIG_PATH,
                    Reason.INVALID,
                    detail="must be a string: write the Serve config as a YAML block "
                    "(serveConfigV2: |)",
                )
                if error.path == SERVE_CONFIG_PATH
                else error
                for error in errors
            ]
        return None, errors


def evaluate(
    new: Mapping[str, Any],
    old: Mapping[str, Any] | None = None,
    *,
    verify_annotations: bool = False,
    check: bool = True,
) -> Evaluation:
    """Default, validate and classify ``new`` (with ``old`` on UPDATE).

    With ``check=False`` (the mutating webhook) the rules, warnings and consequences are skipped:
    the defaults, hashes, class and patch do not depend on them.

    Raises ``NotARayServiceError`` if ``new`` or ``old`` is not a RayService object at all; a
    RayService with wrong fields never raises, it gets errors.
    """
    require_rayservice(new)
    if old is not None:
        require_rayservice(old)
    deep = nesting_error(new)
    if deep is not None:
        return _unanalyzable(new, old, deep)
    # A stored object too deep to compare with counts as one whose cluster cannot be hashed.
    unreadable_old = old is not None and too_deep(old) is not None
    defaulted, default_ops = apply_defaults(new)
    old_defaulted = apply_defaults(old)[0] if old is not None and not unreadable_old else None

    model, errors = parse_rayservice(defaulted) if check else (None, [])
    warnings: list[FieldWarning] = []
    spec = defaulted.get("spec")
    text = spec.get("serveConfigV2") if isinstance(spec, Mapping) else None
    serve = parse_serve_config(text) if isinstance(text, str) or text is None else None
    if model is not None:
        errors.extend(validate(model, old_defaulted))
        warnings.extend(warn(model))
        if serve is not None:
            errors.extend(serve.errors)
            warnings.extend(serve.warnings)
            if serve.empty:
                warnings.append(
                    FieldWarning(
                        SERVE_CONFIG_PATH, "no Serve config: the RayService never becomes ready"
                    )
                )

    change, hashes = analyze(old_defaulted, defaulted)
    if unreadable_old:
        change = Change(ChangeClass.CLUSTER_UPGRADE, _CLUSTER)
    wanted = _wanted_annotations(change, hashes, old)
    annotation_ops = _annotation_ops(new, wanted)
    if verify_annotations:
        errors.extend(_forged(new, wanted))
    name, namespace = _identity(new)
    return Evaluation(
        name=name,
        namespace=namespace,
        api_version=str(new.get("apiVersion")),
        errors=tuple(errors),
        warnings=tuple(warnings),
        change=change,
        hashes=hashes,
        patch=(*default_ops, *annotation_ops),
        mutated=apply_ops(defaulted, annotation_ops),
        consequences=tuple(explain(change, model)),
    )


_CLUSTER: Final = frozenset({Aspect.CLUSTER})


def _identity(obj: Mapping[str, Any]) -> tuple[str, str | None]:
    """``(name or generateName, namespace)``; values that are not strings count as absent."""
    metadata = obj.get("metadata")
    meta = metadata if isinstance(metadata, Mapping) else {}
    name = meta.get("name") or meta.get("generateName")
    namespace = meta.get("namespace")
    return (
        name if isinstance(name, str) else "",
        namespace if isinstance(namespace, str) else None,
    )


def _unanalyzable(
    new: Mapping[str, Any], old: Mapping[str, Any] | None, error: FieldError
) -> Evaluation:
    """The verdict on an object nested too deep to analyze: that error, the defaults, no
    hashes (the annotations are removed, never left stale), and the class of an object whose
    cluster cannot be hashed."""
    defaulted, default_ops = apply_defaults(new)
    change = (
        Change(ChangeClass.CREATE, frozenset())
        if old is None
        else Change(ChangeClass.CLUSTER_UPGRADE, _CLUSTER)
    )
    hashes = Hashes(cluster=None, serve=None)
    annotation_ops = _annotation_ops(new, _wanted_annotations(change, hashes, None))
    name, namespace = _identity(new)
    return Evaluation(
        name=name,
        namespace=namespace,
        api_version=str(new.get("apiVersion")),
        errors=(error,),
        warnings=(),
        change=change,
        hashes=hashes,
        patch=(*default_ops, *annotation_ops),
        mutated=apply_ops(defaulted, annotation_ops),
        consequences=(),
    )


def _wanted_annotations(
    change: Change, hashes: Hashes, old: Mapping[str, Any] | None
) -> dict[str, str | None]:
    """The contract's annotations for the result. When nothing in the spec changed, the class
    stays the stored one (the last real change), so a re-apply writes nothing."""
    kind = change.kind.value
    if change.kind is ChangeClass.NONE:
        kind = _stored_change(old) or kind
    return {
        contract.CHANGE: kind,
        contract.CLUSTER_HASH: hashes.cluster,
        contract.SERVE_HASH: hashes.serve,
    }


def _stored_change(old: Mapping[str, Any] | None) -> str | None:
    """The valid ``raysvc.io/change`` of the stored object, if it has one."""
    metadata = old.get("metadata") if old is not None else None
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    value = annotations.get(contract.CHANGE) if isinstance(annotations, Mapping) else None
    return value if isinstance(value, str) and value in _CLASSES else None


_CLASSES: Final = frozenset(ChangeClass)


def _annotation_ops(obj: Mapping[str, Any], wanted: Mapping[str, str | None]) -> list[PatchOp]:
    """Set the contract's annotations to ``wanted``; remove a hash that cannot be computed
    (never leave it stale). Touches nothing else."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        present = {k: v for k, v in wanted.items() if v is not None}
        return [PatchOp("add", ("metadata",), {"annotations": present})]
    current = metadata.get("annotations")
    if not isinstance(current, Mapping):
        present = {k: v for k, v in wanted.items() if v is not None}
        return [PatchOp("add", ("metadata", "annotations"), present)]
    ops = []
    for key, value in wanted.items():
        path = ("metadata", "annotations", key)
        if value is None:
            if key in current:
                ops.append(PatchOp("remove", path))
        elif key not in current:
            ops.append(PatchOp("add", path, value))
        elif current[key] != value:
            ops.append(PatchOp("replace", path, value))
    return ops


def _forged(obj: Mapping[str, Any], wanted: Mapping[str, str | None]) -> list[FieldError]:
    metadata = obj.get("metadata")
    current = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    if not isinstance(current, Mapping):
        return []
    errors = []
    for key, value in wanted.items():
        if key in current and current[key] != value:
            expected = "absent (it cannot be computed)" if value is None else f"{value!r}"
            errors.append(
                FieldError(
                    ("metadata", "annotations", Key(key)),
                    Reason.INVALID,
                    current[key],
                    f"does not match the spec (expected {expected}); "
                    "only raysvc's mutating webhook sets it",
                )
            )
    return errors
