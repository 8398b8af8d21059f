"""The request pipeline of every write, independent of HTTP.

Owns, for create, update, patch and delete, the sequence kube-apiserver runs:

    decode -> (patch apply) -> mutating admission -> name generation and server fields ->
    schema prune/default/validate -> validating admission -> persist -> (watchers notified by
    the store)

plus reads in a requested version, the status-subresource split, generation, no-op detection,
finalizers and ``deletionTimestamp``, ``dryRun=All``, server-side apply through
:mod:`localkube.fieldmanager`, and the webhook calls of the admission chain. Errors are
:class:`localkube.errors.ApiError` with kube-apiserver's wording.
"""

from __future__ import annotations

import copy
import json
import logging
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from localkube import (
    decoding,
    errors,
    fieldmanager,
    patches,
    schema,
    shapes,
    storage,
    strategies,
)
from localkube.admission import (
    Attributes,
    InvalidResponse,
    Match,
    Webhook,
    build_review,
    denial_status,
    interpret_response,
    match_webhook,
    webhooks_from,
)
from localkube.errors import ApiError, Cause, PatchError
from localkube.resources import CRD_KEY, NAMESPACE_KEY, Registry, ResourceType
from localkube.settings import Settings
from localkube.webhookclient import CallError, WebhookClient

__all__ = ["Options", "Pipeline", "Result", "now_rfc3339"]

log = logging.getLogger(__name__)

Obj = dict[str, Any]
MUTATING_KEY = ("admissionregistration.k8s.io", "mutatingwebhookconfigurations")
VALIDATING_KEY = ("admissionregistration.k8s.io", "validatingwebhookconfigurations")
IMMORTAL_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_CONFLICT = (
    "the object has been modified; please apply your changes to the latest version and try again"
)
_PATCH_RETRIES = 5


def now_rfc3339(later: float = 0) -> str:
    """The current time (plus ``later`` seconds) as kube-apiserver writes timestamps."""
    now = datetime.now(UTC)
    # a grace period may be any int64; the moment it names stops at the last representable one
    later = min(later, (datetime.max.replace(tzinfo=UTC) - now).total_seconds() - 1)
    return (now + timedelta(seconds=later)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Options:
    """Query parameters that shape a write."""

    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = "Warn"
    force: bool = False
    user_agent: str = ""

    @property
    def manager(self) -> str:
        if self.field_manager:
            return self.field_manager
        return self.user_agent.split("/", 1)[0][:128] or "unknown"


@dataclass
class Result:
    """A successful answer: the body, the HTTP code and warnings for ``Warning`` headers."""

    body: Obj
    code: int = 200
    warnings: list[str] = field(default_factory=list)


def _meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _spec_part(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class Pipeline:
    """Runs every verb against the store (see the module docstring)."""

    def __init__(
        self,
        *,
        settings: Settings,
        registry: Registry,
        store: storage.Store,
        webhooks: WebhookClient,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.store = store
        self.webhooks = webhooks
        self.cluster_ips = strategies.ClusterIPs(settings.service_cidr)

    # representation ------------------------------------------------------------------------
    def present(self, rt: ResourceType, version: str, obj: Mapping[str, Any]) -> Obj:
        """A stored object as served in ``version`` (apiVersion rewritten, defaults applied)."""
        out = copy.deepcopy(dict(obj))
        out["apiVersion"] = rt.api_version(version)
        out["kind"] = rt.kind
        if rt.custom:
            info = rt.version(version)
            schema.apply_defaults(out, info.schema if info else None)
        return out

    def _to_storage(self, rt: ResourceType, obj: Obj) -> Obj:
        out = copy.deepcopy(obj)
        out["apiVersion"] = rt.api_version(rt.storage_version)
        out["kind"] = rt.kind
        return out

    def _list_keys(self, rt: ResourceType, version: str) -> fieldmanager.ListKeys:
        info = rt.version(version)
        root = info.schema if info is not None else None

        def keys(names: tuple[str, ...]) -> tuple[str, ...] | None:
            if names in (("metadata", "finalizers"),):
                return ()
            if rt.custom and root is not None and names[:1] != ("metadata",):
                node: Any = root
                for name in names:
                    if not isinstance(node, Mapping):
                        return None
                    if node.get("type") == "array":
                        node = node.get("items") or {}
                    node = (node.get("properties") or {}).get(name) or (
                        node.get("additionalProperties")
                        if isinstance(node.get("additionalProperties"), Mapping)
                        else None
                    )
                if isinstance(node, Mapping):
                    if node.get("x-kubernetes-list-type") == "map":
                        return tuple(node.get("x-kubernetes-list-map-keys") or ())
                    if node.get("x-kubernetes-list-type") == "set":
                        return ()
                return None
            key = patches.list_merge_key(rt.kind, names)
            return (key,) if key else None

        return keys

    # decoding ------------------------------------------------------------------------------
    def decode(self, rt: ResourceType, version: str, body: Any, namespace: str) -> Obj:
        """Check a request body against the URL; returns the object with its namespace set."""
        if not isinstance(body, dict):
            raise errors.bad_request(
                f"the object provided is unrecognized (must be of type {rt.kind})"
            )
        obj = copy.deepcopy(body)
        expected = rt.api_version(version)
        if rt.custom:
            if not obj.get("kind"):
                raise errors.bad_request(
                    f"Object 'Kind' is missing in '{json.dumps(body, separators=(',', ':'))}'"
                )
            if not obj.get("apiVersion"):
                raise errors.bad_request(
                    f"Object 'apiVersion' is missing in '{json.dumps(body, separators=(',', ':'))}'"
                )
        obj.setdefault("apiVersion", expected)
        obj.setdefault("kind", rt.kind)
        if obj["apiVersion"] != expected:
            raise errors.bad_request(
                f"the API version in the data ({obj['apiVersion']}) "
                f"does not match the expected API version ({expected})"
            )
        if obj["kind"] != rt.kind:
            raise errors.bad_request(
                f"the kind in the data ({obj['kind']}) does not match the expected kind ({rt.kind})"
            )
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        self._check_shape(rt, version, obj)
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does "
                    "not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return obj

    def _check_shape(self, rt: ResourceType, version: str, obj: Obj) -> None:
        """400 when a field's JSON type cannot decode into its Go type (see :mod:`shapes`)."""
        try:
            if rt.key == CRD_KEY:
                shapes.check_crd(obj)
            elif rt.custom:
                shapes.check_metadata(rt.kind, obj)
            else:
                shapes.check_object(rt.api_version(version), rt.kind, obj)
        except shapes.ShapeError as e:
            raise errors.bad_request(
                f'{rt.kind} in version "{version}" cannot be handled as a {rt.kind}: {e}'
            ) from e

    def _shape(
        self, rt: ResourceType, version: str, obj: Obj, opts: Options, warnings: list[str]
    ) -> None:
        """Prune unknown fields and apply defaults (custom resources), honouring fieldValidation."""
        if not rt.custom:
            return
        info = rt.version(version)
        unknown = schema.prune(obj, info.schema if info else None)
        if unknown and opts.field_validation == "Strict":
            detail = ", ".join(f'unknown field "{u}"' for u in unknown)
            raise errors.bad_request(
                f'{rt.kind} in version "{version}" cannot be handled '
                f"as a {rt.kind}: strict decoding error: {detail}"
            )
        if unknown and opts.field_validation == "Warn":
            warnings.extend(f'unknown field "{u}"' for u in unknown)
        schema.apply_defaults(obj, info.schema if info else None)

    def _reshape(self, rt: ResourceType, version: str, obj: Obj) -> None:
        """Prune and default after a mutating webhook patched the object (silently)."""
        if rt.custom:
            info = rt.version(version)
            schema.prune(obj, info.schema if info else None)
            schema.apply_defaults(obj, info.schema if info else None)

    def _validate(
        self, rt: ResourceType, version: str, obj: Obj, name: str, *, old: Obj | None = None
    ) -> None:
        causes: list[Cause] = []
        if name:
            causes += schema.validate_name(rt.kind, name)
        if rt.custom:
            info = rt.version(version)
            causes += schema.validate(obj, info.schema if info else None)
        else:
            causes += strategies.validate_builtin(rt.kind, obj)
            if old is not None:
                causes += strategies.validate_builtin_update(rt.kind, old, obj)
        causes += shapes.validate_metadata(obj)
        if causes:
            raise errors.invalid(rt.kind, rt.group, name, causes)

    # admission -----------------------------------------------------------------------------
    def _namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        ns = self.store.get(NAMESPACE_KEY, "", namespace) if namespace else None
        return _meta(ns).get("labels") if ns else None

    def _attributes(
        self,
        rt: ResourceType,
        version: str,
        *,
        operation: str,
        subresource: str,
        namespace: str,
        name: str,
        obj: Obj | None,
        old: Obj | None,
        opts: Options,
        options: Mapping[str, Any],
    ) -> Attributes:
        return Attributes(
            operation=operation,
            group=rt.group,
            version=version,
            resource=rt.plural,
            subresource=subresource,
            kind=rt.kind,
            namespace=namespace,
            name=name,
            namespaced=rt.namespaced,
            obj=obj,
            old=old,
            dry_run=opts.dry_run,
            options=options,
            user_info=self.settings.user_info,
            namespace_labels=self._namespace_labels(namespace),
            versions=tuple(v.name for v in rt.versions),
        )

    def _configurations(self, key: tuple[str, str], *, mutating: bool) -> list[Webhook]:
        configs, _ = self.store.list(key)
        return webhooks_from(configs, mutating=mutating)

    async def _call(self, match: Match, attrs: Attributes) -> Any:
        """Call one webhook; returns its Outcome, or None when its failure is ignored."""
        hook = match.webhook
        if attrs.dry_run and hook.side_effects not in ("None", "NoneOnDryRun"):
            raise errors.bad_request(f'admission webhook "{hook.name}" does not support dry run')
        uid = str(uuid.uuid4())
        review = build_review(match, attrs, uid)
        try:
            answer = await self.webhooks.call(hook.client_config, review, hook.timeout_seconds)
            return interpret_response(answer, uid=uid, mutating=hook.mutating)
        except (CallError, InvalidResponse) as e:
            if hook.failure_policy == "Ignore":
                log.warning(
                    "webhook failure ignored", extra={"webhook": hook.name, "error": str(e)}
                )
                return None
            raise errors.internal_error(f'failed calling webhook "{hook.name}": {e}') from e

    async def mutate(
        self, rt: ResourceType, attrs: Attributes, obj: Obj | None, warnings: list[str]
    ) -> Obj | None:
        """Run the mutating webhooks serially; returns the (patched, re-pruned) object."""
        hooks = self._configurations(MUTATING_KEY, mutating=True)
        reinvoke: list[Webhook] = []
        changed_after: dict[str, bool] = {}
        for round_hooks in (hooks, None):
            if round_hooks is None:
                round_hooks = [h for h in reinvoke if changed_after.get(h.name)]
                if not round_hooks:
                    break
            for hook in round_hooks:
                current = _with(attrs, obj)
                match = match_webhook(hook, current)
                if match is None:
                    continue
                outcome = await self._call(match, current)
                if outcome is None:
                    continue
                warnings.extend(outcome.warnings)
                if not outcome.allowed:
                    status = denial_status(hook.name, outcome.status)
                    raise ApiError(
                        int(status["code"]),
                        str(status.get("reason", "")),
                        str(status["message"]),
                        body=status,
                    )
                if outcome.patch and obj is not None:
                    patched = _apply_webhook_patch(obj, outcome.patch, match, attrs, hook.name)
                    self._reshape(rt, attrs.version, patched)
                    if patched != obj:
                        for name in changed_after:
                            if name != hook.name:
                                changed_after[name] = True
                    obj = patched
                if hook.reinvocation_policy == "IfNeeded" and hook not in reinvoke:
                    reinvoke.append(hook)
                    changed_after[hook.name] = False
        return obj

    async def validate_admission(self, attrs: Attributes, warnings: list[str]) -> None:
        """Run the validating webhooks; every one must allow."""
        hooks = self._configurations(VALIDATING_KEY, mutating=False)
        matches = [m for m in (match_webhook(h, attrs) for h in hooks) if m is not None]
        outcomes = [await self._call(m, attrs) for m in matches]
        for match, outcome in zip(matches, outcomes, strict=True):
            if outcome is None:
                continue
            warnings.extend(outcome.warnings)
            if not outcome.allowed:
                status = denial_status(match.webhook.name, outcome.status)
                raise ApiError(
                    int(status["code"]),
                    str(status.get("reason", "")),
                    str(status["message"]),
                    body=status,
                )

    # reads ---------------------------------------------------------------------------------
    def get(self, rt: ResourceType, version: str, namespace: str, name: str) -> Obj:
        obj = self.store.get(rt.key, namespace, name)
        if obj is None:
            raise errors.not_found(rt.plural, rt.group, name)
        return self.present(rt, version, obj)

    def _check_namespace(self, rt: ResourceType, namespace: str, name: str) -> None:
        if not rt.namespaced:
            return
        ns = self.store.get(NAMESPACE_KEY, "", namespace)
        if ns is None:
            raise errors.not_found("namespaces", "", namespace)
        if _meta(ns).get("deletionTimestamp"):
            raise errors.forbidden(
                rt.plural,
                rt.group,
                name,
                "unable to create new content in namespace "
                f"{namespace} because it is being terminated",
            )

    def _check_crd_active(self, rt: ResourceType) -> None:
        if not rt.custom:
            return
        crd = self.store.get(CRD_KEY, "", rt.qualified)
        if crd is not None and _meta(crd).get("deletionTimestamp"):
            error = errors.method_not_allowed(rt.plural, rt.group, "create")
            error.message = "create not allowed while custom resource definition is terminating"
            raise error

    # create --------------------------------------------------------------------------------
    async def create(
        self,
        rt: ResourceType,
        version: str,
        namespace: str,
        body: Any,
        opts: Options,
        *,
        applied: bool = False,
        warnings: list[str] | None = None,
    ) -> Result:
        warnings = [] if warnings is None else warnings
        obj = self.decode(rt, version, body, namespace)
        self._shape(rt, version, obj, opts, warnings)
        meta = _meta(obj)
        self._check_namespace(
            rt, namespace, str(meta.get("name") or meta.get("generateName") or "")
        )
        self._check_crd_active(rt)
        options: dict[str, Any] = {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        if opts.dry_run:
            options["dryRun"] = ["All"]
        if opts.field_manager:
            options["fieldManager"] = opts.field_manager
        attrs = self._attributes(
            rt,
            version,
            operation="CREATE",
            subresource="",
            namespace=namespace,
            name=str(meta.get("name", "")),
            obj=obj,
            old=None,
            opts=opts,
            options=options,
        )
        mutated = await self.mutate(rt, attrs, obj, warnings)
        assert mutated is not None
        obj = mutated
        meta = obj.setdefault("metadata", {})
        # BeforeCreate: name generation, server fields
        if rt.has_status(version):
            obj.pop("status", None)  # PrepareForCreate
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = str(meta["generateName"]) + "".join(
                    secrets.choice(_NAME_CHARS) for _ in range(5)
                )
            else:
                raise errors.invalid(
                    rt.kind,
                    rt.group,
                    "",
                    [
                        Cause(
                            "FieldValueRequired",
                            "Required value: name or generateName is required",
                            "metadata.name",
                        )
                    ],
                )
        if _positive_int(meta.get("resourceVersion")):
            # etcd3 store's plain error: a 500 without a reason (kubernetes#62836 keeps it)
            raise ApiError(500, "", "resourceVersion should not be set on objects to be created")
        meta.pop("resourceVersion", None)
        name = str(meta["name"])
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        meta.pop("deletionTimestamp", None)
        meta.pop("deletionGracePeriodSeconds", None)
        if rt.tracks_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        strategies.prepare_create(rt.kind, obj, self.cluster_ips)
        self._validate(rt, version, obj, name)
        if not applied:
            meta.pop("managedFields", None)
            fieldmanager.track_update(
                None,
                obj,
                manager=opts.manager,
                api_version=rt.api_version(version),
                now=now_rfc3339(),
                subresource="",
                list_keys=self._list_keys(rt, version),
            )
        final_attrs = _with(attrs, obj, name=name)
        await self.validate_admission(final_attrs, warnings)
        if opts.dry_run:
            if self.store.get(rt.key, namespace if rt.namespaced else "", name) is not None:
                raise errors.already_exists(rt.plural, rt.group, name)
            if rt.kind == "Service":
                self.cluster_ips.release(str((obj.get("spec") or {}).get("clusterIP", "")))
            return Result(self.present(rt, version, obj), 201, warnings)
        try:
            stored = await self.store.create(rt.key, self._to_storage(rt, obj))
        except storage.AlreadyExists:
            raise errors.already_exists(rt.plural, rt.group, name) from None
        return Result(self.present(rt, version, stored), 201, warnings)

    # update --------------------------------------------------------------------------------
    async def update(
        self,
        rt: ResourceType,
        version: str,
        namespace: str,
        name: str,
        body: Any,
        opts: Options,
        *,
        subresource: str = "",
    ) -> Result:
        warnings: list[str] = []
        obj = self.decode(rt, version, body, namespace)
        body_name = str(_meta(obj).get("name") or "")
        if body_name != name:
            raise errors.bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        self._shape(rt, version, obj, opts, warnings)
        ns = namespace if rt.namespaced else ""
        old = self.store.get(rt.key, ns, name)
        if old is None:
            raise errors.not_found(rt.plural, rt.group, name)
        rv = str(_meta(obj).get("resourceVersion") or "")
        if not rv and rt.custom:
            raise errors.invalid(
                rt.kind,
                rt.group,
                name,
                [
                    Cause(
                        "FieldValueInvalid",
                        "Invalid value: 0x0: must be specified for an update",
                        "metadata.resourceVersion",
                    )
                ],
            )
        if rv and rv != _meta(old).get("resourceVersion"):
            raise errors.conflict(rt.plural, rt.group, name, _CONFLICT)
        options: dict[str, Any] = {"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"}
        if opts.dry_run:
            options["dryRun"] = ["All"]
        if opts.field_manager:
            options["fieldManager"] = opts.field_manager
        return await self._finish_update(
            rt, version, old, obj, opts, subresource=subresource, options=options, warnings=warnings
        )

    async def _finish_update(
        self,
        rt: ResourceType,
        version: str,
        old_stored: Obj,
        new: Obj,
        opts: Options,
        *,
        subresource: str,
        options: Mapping[str, Any],
        warnings: list[str],
        applied: bool = False,
    ) -> Result:
        old = self.present(rt, version, old_stored)
        old_meta = _meta(old)
        name = str(old_meta["name"])
        attrs = self._attributes(
            rt,
            version,
            operation="UPDATE",
            subresource=subresource,
            namespace=str(old_meta.get("namespace", "")),
            name=name,
            obj=new,
            old=old,
            opts=opts,
            options=options,
        )
        mutated = await self.mutate(rt, attrs, new, warnings)
        assert mutated is not None
        new = self._prepare_update(rt, version, old, mutated, subresource)
        meta = _meta(new)
        added = [
            f for f in meta.get("finalizers") or [] if f not in (old_meta.get("finalizers") or [])
        ]
        if old_meta.get("deletionTimestamp") and added:
            raise errors.invalid(
                rt.kind,
                rt.group,
                name,
                [
                    Cause(
                        "FieldValueForbidden",
                        "Forbidden: no new finalizers can be added if the object is "
                        f"being deleted, found new finalizers {_go_strings(added)}",
                        "metadata.finalizers",
                    )
                ],
            )
        if rt.tracks_generation and _spec_part(new) != _spec_part(old):
            meta["generation"] = int(old_meta.get("generation") or 1) + 1
        self._validate(rt, version, new, name, old=old)
        if not applied:
            requested = meta.get("managedFields")
            if requested is None or requested == old_meta.get("managedFields"):
                meta["managedFields"] = copy.deepcopy(old_meta.get("managedFields") or [])
            elif requested == [{}]:
                meta["managedFields"] = []
            fieldmanager.track_update(
                old,
                new,
                manager=opts.manager,
                api_version=rt.api_version(version),
                now=now_rfc3339(),
                subresource=subresource,
                list_keys=self._list_keys(rt, version),
            )
            if not meta.get("managedFields"):
                meta.pop("managedFields", None)
        await self.validate_admission(_with(attrs, new), warnings)
        if _without_manager_times(new) == _without_manager_times(old):
            # only managedFields timestamps moved: kube-apiserver skips such a write
            return Result(old, 200, warnings)
        # The store's shouldDeleteDuringUpdate: a graceful deletion in progress (a Pod its node
        # is still stopping) is finished by the node's DELETE, not by an update.
        finished = (
            bool(meta.get("deletionTimestamp"))
            and not meta.get("finalizers")
            and not _namespace_finalizers(rt, new)
            and not int(old_meta.get("deletionGracePeriodSeconds") or 0)
        )
        if opts.dry_run:
            return Result(new, 200, warnings)
        try:
            if finished:
                stored = await self.store.delete(
                    rt.key,
                    str(old_meta.get("namespace", "")),
                    name,
                    expected_rv=str(old_meta.get("resourceVersion")),
                    final=self._to_storage(rt, new),
                )
            else:
                stored = await self.store.update(
                    rt.key,
                    self._to_storage(rt, new),
                    expected_rv=str(old_meta.get("resourceVersion")),
                )
        except storage.Conflict:
            raise errors.conflict(rt.plural, rt.group, name, _CONFLICT) from None
        except storage.Missing:
            raise errors.not_found(rt.plural, rt.group, name) from None
        return Result(self.present(rt, version, stored), 200, warnings)

    def _prepare_update(
        self, rt: ResourceType, version: str, old: Obj, new: Obj, subresource: str
    ) -> Obj:
        """Keep server-owned fields and apply the status split (PrepareForUpdate)."""
        old_meta = _meta(old)
        if subresource == "status":
            status = new.get("status")
            managed = _meta(new).get("managedFields")
            out = copy.deepcopy(old)
            if status is None:
                out.pop("status", None)
            else:
                out["status"] = copy.deepcopy(status)
            if managed is not None:
                out["metadata"]["managedFields"] = managed
            else:
                out["metadata"].pop("managedFields", None)
            return out
        out = copy.deepcopy(new)
        meta = out.setdefault("metadata", {})
        for key in (
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "name",
            "namespace",
            "resourceVersion",
        ):
            if key in old_meta:
                meta[key] = copy.deepcopy(old_meta[key])
            else:
                meta.pop(key, None)
        if rt.has_status(version):
            if "status" in old:
                out["status"] = copy.deepcopy(old["status"])
            else:
                out.pop("status", None)
        if not rt.custom:
            strategies.prepare_update(rt.kind, old, out)
        return out

    # patch ---------------------------------------------------------------------------------
    async def patch(
        self,
        rt: ResourceType,
        version: str,
        namespace: str,
        name: str,
        body: bytes,
        content_type: str,
        opts: Options,
        *,
        subresource: str = "",
    ) -> Result:
        accepted = [patches.JSON_PATCH, patches.MERGE_PATCH, patches.APPLY_PATCH]
        if not rt.custom:
            accepted.insert(2, patches.STRATEGIC_MERGE_PATCH)
        if content_type not in accepted:
            raise errors.unsupported_media_type(content_type, accepted)
        if content_type == patches.APPLY_PATCH:
            if not opts.field_manager:
                raise errors.invalid(
                    "PatchOptions",
                    "meta.k8s.io",
                    "",
                    [
                        Cause(
                            "FieldValueRequired",
                            "Required value: is required for apply patch",
                            "fieldManager",
                        )
                    ],
                )
            if subresource and subresource != "status":
                raise errors.bad_request("apply is not supported on this subresource")
        ns = namespace if rt.namespaced else ""
        options: dict[str, Any] = {"apiVersion": "meta.k8s.io/v1", "kind": "PatchOptions"}
        if opts.dry_run:
            options["dryRun"] = ["All"]
        if opts.field_manager:
            options["fieldManager"] = opts.field_manager
        if opts.force:
            options["force"] = True
        for attempt in range(_PATCH_RETRIES):
            old_stored = self.store.get(rt.key, ns, name)
            if content_type == patches.APPLY_PATCH:
                applied = self._decode_apply(rt, version, body, namespace, name)
                if old_stored is None:
                    if subresource:
                        raise errors.not_found(rt.plural, rt.group, name)
                    return await self._apply_create(rt, version, namespace, applied, opts)
            if old_stored is None:
                raise errors.not_found(rt.plural, rt.group, name)
            current = self.present(rt, version, old_stored)
            warnings: list[str] = []
            try:
                if content_type == patches.JSON_PATCH:
                    patched = patches.apply_json_patch(
                        current, body, max_copy_bytes=self.settings.max_body_bytes
                    )
                elif content_type == patches.MERGE_PATCH:
                    patched = patches.apply_merge_patch(current, body)
                elif content_type == patches.STRATEGIC_MERGE_PATCH:
                    patched = patches.apply_strategic_merge_patch(current, body, rt.kind)
                else:
                    patched = self._apply(rt, version, current, applied, opts, subresource)
                decoding.check_bounds(patched, max_bytes=self.settings.max_body_bytes)
            except PatchError as e:
                if e.too_large:
                    raise errors.too_large(str(e)) from e
                if e.bad_body:
                    raise errors.bad_request(str(e)) from e
                raise ApiError(422, "Invalid", str(e)) from e
            except decoding.DecodeError as e:
                if e.too_large:
                    raise errors.too_large(str(e)) from e
                raise errors.bad_request(str(e)) from e
            pmeta = _meta(patched)
            if not isinstance(patched.get("metadata", {}), dict):
                raise errors.bad_request("metadata must be an object")
            self._check_shape(rt, version, patched)
            if pmeta.get("uid") and pmeta["uid"] != _meta(current).get("uid"):
                raise errors.conflict(
                    rt.plural,
                    rt.group,
                    name,
                    f"Precondition failed: UID in precondition: {pmeta['uid']}, "
                    f"UID in object meta: {_meta(current).get('uid')}",
                )
            precondition = str(pmeta.get("resourceVersion") or "")
            if precondition != str(_meta(current).get("resourceVersion")):
                if precondition:
                    raise errors.conflict(rt.plural, rt.group, name, _CONFLICT)
                pmeta["resourceVersion"] = _meta(current).get("resourceVersion")
            if pmeta.get("name", name) != name:
                raise errors.bad_request(
                    f"the name of the object ({pmeta.get('name')}) "
                    f"does not match the name on the URL ({name})"
                )
            if rt.namespaced:
                pmeta["namespace"] = namespace
            patched["apiVersion"] = rt.api_version(version)
            patched["kind"] = rt.kind
            self._shape(rt, version, patched, opts, warnings)
            try:
                return await self._finish_update(
                    rt,
                    version,
                    old_stored,
                    patched,
                    opts,
                    subresource=subresource,
                    options=options,
                    warnings=warnings,
                    applied=content_type == patches.APPLY_PATCH,
                )
            except ApiError as e:
                retryable = (
                    e.code == 409
                    and e.reason == "Conflict"
                    and not precondition
                    and "modified" in e.message
                )
                if not retryable or attempt == _PATCH_RETRIES - 1:
                    raise
        raise errors.conflict(rt.plural, rt.group, name, _CONFLICT)

    def _decode_apply(
        self, rt: ResourceType, version: str, body: bytes, namespace: str, name: str
    ) -> Obj:
        try:
            applied = decoding.load_yaml(body, max_bytes=self.settings.max_body_bytes)
        except decoding.DecodeError as e:
            if e.too_large:
                raise errors.too_large(str(e)) from e
            raise errors.bad_request(f"error decoding YAML: {e}") from e
        obj = self.decode(rt, version, applied, namespace)
        if str(_meta(obj).get("name") or "") != name:
            raise errors.bad_request(
                f"the name of the object ({_meta(obj).get('name', '')}) "
                f"does not match the name on the URL ({name})"
            )
        return obj

    def _apply(
        self,
        rt: ResourceType,
        version: str,
        current: Obj,
        applied: Obj,
        opts: Options,
        subresource: str,
    ) -> Obj:
        config = copy.deepcopy(applied)
        if subresource == "status":
            config = {
                k: v for k, v in config.items() if k in ("apiVersion", "kind", "metadata", "status")
            }
        merged, conflicts = fieldmanager.apply_configuration(
            current,
            config,
            manager=opts.manager,
            api_version=rt.api_version(version),
            force=opts.force,
            now=now_rfc3339(),
            list_keys=self._list_keys(rt, version),
        )
        if conflicts:
            error = errors.conflict(rt.plural, rt.group, str(_meta(current).get("name")), "")
            error.message = fieldmanager.render_conflicts(conflicts)
            error.causes = [
                Cause(
                    "FieldManagerConflict",
                    f'conflict with "{c.manager}" using {c.api_version}',
                    c.path,
                )
                for c in conflicts
            ]
            raise error
        return merged

    async def _apply_create(
        self, rt: ResourceType, version: str, namespace: str, applied: Obj, opts: Options
    ) -> Result:
        merged, _ = fieldmanager.apply_configuration(
            {},
            applied,
            manager=opts.manager,
            api_version=rt.api_version(version),
            force=True,
            now=now_rfc3339(),
            list_keys=self._list_keys(rt, version),
        )
        merged["apiVersion"] = applied["apiVersion"]
        merged["kind"] = applied["kind"]
        return await self.create(rt, version, namespace, merged, opts, applied=True)

    # binding -------------------------------------------------------------------------------
    async def bind(self, namespace: str, name: str, body: Any, opts: Options) -> Result:
        """``POST pods/{name}/binding``: assign an unscheduled Pod to a node (the scheduler's call).

        201 ``Status Success``; 409 when the Pod is already assigned or being deleted.
        """
        if not isinstance(body, dict):
            raise errors.bad_request("the body must be a Binding")
        try:
            shapes.check_binding(body)
        except shapes.ShapeError as e:
            raise errors.bad_request(
                f'Binding in version "v1" cannot be handled as a Binding: {e}'
            ) from e
        target = body.get("target") or {}
        node = str(target.get("name") or "")
        if not node:
            raise errors.bad_request("Binding.target.name: Required value")
        for _ in range(_PATCH_RETRIES):
            old = self.store.get(("", "pods"), namespace, name)
            if old is None:
                raise errors.not_found("pods", "", name)
            assigned = (old.get("spec") or {}).get("nodeName")
            if assigned:
                why = f'pod {name} is already assigned to node "{assigned}"'
                raise errors.conflict("pods", "", name, why)
            if _meta(old).get("deletionTimestamp"):
                why = f"pod {name} is being deleted, cannot be assigned to a host"
                raise errors.conflict("pods", "", name, why)
            new = copy.deepcopy(old)
            new["spec"]["nodeName"] = node
            annotations = ((body.get("metadata") or {}).get("annotations")) or {}
            if annotations:
                new["metadata"].setdefault("annotations", {}).update(annotations)
            status = new.setdefault("status", {})
            conditions = [
                c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"
            ]
            conditions.append(
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()}
            )
            status["conditions"] = conditions
            if opts.dry_run:
                break
            try:
                await self.store.update(
                    ("", "pods"), new, expected_rv=str(_meta(old)["resourceVersion"])
                )
            except storage.Conflict:
                continue
            break
        else:
            raise errors.conflict("pods", "", name, _CONFLICT)
        status_body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        }
        return Result(status_body, 201)

    # delete --------------------------------------------------------------------------------
    async def delete(
        self,
        rt: ResourceType,
        version: str,
        namespace: str,
        name: str,
        delete_options: Mapping[str, Any],
        opts: Options,
    ) -> Result:
        ns = namespace if rt.namespaced else ""
        old_stored = self.store.get(rt.key, ns, name)
        if old_stored is None:
            raise errors.not_found(rt.plural, rt.group, name)
        old = self.present(rt, version, old_stored)
        old_meta = _meta(old)
        preconditions = delete_options.get("preconditions") or {}
        if preconditions.get("uid") and preconditions["uid"] != old_meta.get("uid"):
            raise errors.conflict(
                rt.plural,
                rt.group,
                name,
                "Precondition failed: UID in precondition: "
                f"{preconditions['uid']}, UID in object meta: {old_meta.get('uid')}",
            )
        if preconditions.get("resourceVersion") and preconditions[
            "resourceVersion"
        ] != old_meta.get("resourceVersion"):
            raise errors.conflict(
                rt.plural,
                rt.group,
                name,
                "Precondition failed: ResourceVersion in "
                f"precondition: {preconditions['resourceVersion']}, "
                f"ResourceVersion in object meta: {old_meta.get('resourceVersion')}",
            )
        if rt.key == NAMESPACE_KEY and name in IMMORTAL_NAMESPACES:
            raise errors.forbidden("namespaces", "", name, "this namespace may not be deleted")
        policy = delete_options.get("propagationPolicy")
        if policy is None and delete_options.get("orphanDependents") is True:
            policy = "Orphan"
        policy = policy or "Background"
        if policy not in ("Background", "Foreground", "Orphan"):
            raise errors.bad_request(f'propagationPolicy: Unsupported value: "{policy}"')
        options: dict[str, Any] = {
            "apiVersion": "meta.k8s.io/v1",
            "kind": "DeleteOptions",
            "propagationPolicy": policy,
        }
        if opts.dry_run:
            options["dryRun"] = ["All"]
        for key in ("gracePeriodSeconds", "preconditions"):
            if key in delete_options:
                options[key] = delete_options[key]
        warnings: list[str] = []
        attrs = self._attributes(
            rt,
            version,
            operation="DELETE",
            subresource="",
            namespace=ns,
            name=name,
            obj=None,
            old=old,
            opts=opts,
            options=options,
        )
        await self.mutate(rt, attrs, None, warnings)
        await self.validate_admission(attrs, warnings)
        finalizers = list(old_meta.get("finalizers") or [])
        if policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        if rt.key == CRD_KEY and "customresourcecleanup.apiextensions.k8s.io" not in finalizers:
            finalizers.append("customresourcecleanup.apiextensions.k8s.io")
        # A Pod bound to a node is deleted gracefully: its node stops it, then deletes it with 0.
        grace = strategies.pod_grace_seconds(old, delete_options) if rt.kind == "Pod" else 0
        graceful = bool(finalizers) or rt.key == NAMESPACE_KEY or grace > 0
        if graceful:
            new = copy.deepcopy(old)
            meta = new["metadata"]
            if finalizers:
                meta["finalizers"] = finalizers
            if meta.get("deletionTimestamp") and grace < int(
                meta.get("deletionGracePeriodSeconds") or 0
            ):
                meta.pop("deletionTimestamp")  # a shorter grace period replaces a longer one
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = now_rfc3339(grace)
                meta["deletionGracePeriodSeconds"] = grace
                if rt.tracks_generation:
                    meta["generation"] = int(meta.get("generation") or 1) + 1
            if rt.key == NAMESPACE_KEY:
                new.setdefault("status", {})["phase"] = "Terminating"
            if rt.key == CRD_KEY:
                strategies.prepare_update(rt.kind, new, new)
            # handlers/delete.go: 202 only when not deleted at once and orphanDependents=false
            code = 202 if delete_options.get("orphanDependents") is False else 200
            if new == old or opts.dry_run:
                return Result(new, code, warnings)
            try:
                stored = await self.store.update(
                    rt.key, self._to_storage(rt, new), expected_rv=str(old_meta["resourceVersion"])
                )
            except storage.Conflict:
                raise errors.conflict(rt.plural, rt.group, name, _CONFLICT) from None
            return Result(self.present(rt, version, stored), code, warnings)
        if not opts.dry_run:
            try:
                final = await self.store.delete(
                    rt.key, ns, name, expected_rv=str(old_meta["resourceVersion"])
                )
            except storage.Conflict:
                raise errors.conflict(rt.plural, rt.group, name, _CONFLICT) from None
            except storage.Missing:
                raise errors.not_found(rt.plural, rt.group, name) from None
            old = self.present(rt, version, final)
        if rt.return_deleted_object:
            return Result(old, 200, warnings)
        details = {
            "name": name,
            "group": rt.group,
            "kind": rt.plural,
            "uid": old_meta.get("uid", ""),
        }
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        }
        return Result(status, 200, warnings)


def _with(attrs: Attributes, obj: Obj | None, *, name: str | None = None) -> Attributes:
    return replace(attrs, obj=obj, name=attrs.name if name is None else name)


def _apply_webhook_patch(
    obj: Obj, patch: list[dict[str, Any]], match: Match, attrs: Attributes, hook: str
) -> Obj:
    versioned = dict(obj)
    versioned["apiVersion"] = f"{attrs.group}/{match.version}" if attrs.group else match.version
    try:
        patched = patches.apply_json_patch(versioned, json.dumps(patch).encode())
    except PatchError as e:
        raise errors.internal_error(
            f'failed calling webhook "{hook}": failed to apply the JSON patch: {e}'
        ) from e
    patched["apiVersion"] = obj.get("apiVersion")
    return patched


def _without_manager_times(obj: Mapping[str, Any]) -> Any:
    """``obj`` with the ``time`` of its managedFields entries left out (for no-op checks)."""
    entries = _meta(obj).get("managedFields")
    if not isinstance(entries, list):
        return obj
    out = dict(obj)
    out["metadata"] = {
        **_meta(obj),
        "managedFields": [
            {k: v for k, v in e.items() if k != "time"} if isinstance(e, dict) else e
            for e in entries
        ],
    }
    return out


def _namespace_finalizers(rt: ResourceType, obj: Mapping[str, Any]) -> list[Any]:
    if rt.key != NAMESPACE_KEY:
        return []
    return list((obj.get("spec") or {}).get("finalizers") or [])


def _positive_int(value: Any) -> bool:
    try:
        return int(str(value)) > 0
    except ValueError:
        return False


def _go_strings(values: list[str]) -> str:
    return "[]string{" + ", ".join(json.dumps(v) for v in values) + "}"
