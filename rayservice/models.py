"""Typed, read-only views of RayService (ray.io v1 and v1alpha1) and RayCluster specs.

The models check shape and types the way the API server's schema would (strict: ``"5"`` is not
an integer) and give the rules typed access. They are views, not the source of truth: defaulting
and hashing work on the raw JSON object, so a field these models do not know is never dropped:
it stays in the object and in ``model_extra``.

Python names are snake_case; the wire names (camelCase) are the aliases. Pod templates are only
modelled as far as the rules read them (containers, ports, env, resources, restartPolicy).
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from rayservice.quantity import MAX_QUANTITY, QuantityError, quantity_value

__all__ = [
    "API_VERSIONS",
    "AuthOptions",
    "AutoscalerOptions",
    "ClusterUpgradeOptions",
    "Container",
    "ContainerPort",
    "EnvVar",
    "GcsFaultToleranceOptions",
    "HeadGroupSpec",
    "ObjectMeta",
    "PodSpec",
    "PodTemplateSpec",
    "RayClusterSpec",
    "RayClusterUpgradeStrategy",
    "RayService",
    "RayServiceSpec",
    "RayServiceSpecV1Alpha1",
    "RayServiceUpgradeStrategy",
    "RayServiceV1",
    "RayServiceV1Alpha1",
    "ResourceRequirements",
    "ScaleStrategy",
    "WorkerGroupSpec",
    "model_for",
]

API_VERSIONS: Final = ("ray.io/v1", "ray.io/v1alpha1")

INT32_MAX: Final = 2**31 - 1
Int32 = Annotated[int, Field(ge=-(2**31), le=INT32_MAX)]


def _quantity(value: object) -> object:
    """Accept what Kubernetes accepts for a resource quantity: a string or a number in
    ``resource.Quantity``'s grammar and range, not negative (as the API server checks Pods)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("must be a quantity (a string such as 500m or 2Gi, or a number)")
    if isinstance(value, str) and len(value) <= _REMEMBERED_LENGTH:
        problem = _text_problem(value)
    else:
        problem = _problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


_REMEMBERED_LENGTH: Final = 40


def _problem(value: int | float | str) -> str | None:
    """What is wrong with a quantity, or ``None``."""
    if type(value) is int and 0 <= value <= MAX_QUANTITY:
        return None  # the common case, without a Fraction
    try:
        amount = quantity_value(value)
    except QuantityError as exc:
        return str(exc)
    return "must be greater than or equal to 0" if amount < 0 else None


@functools.lru_cache(maxsize=2048)
def _text_problem(value: str) -> str | None:
    """``_problem`` of a short text, remembered: the same few quantities fill every pod."""
    return _problem(value)


Quantity = Annotated[int | float | str, BeforeValidator(_quantity)]


class K8sModel(BaseModel):
    """Base of the Kubernetes-side models: strict types, camelCase aliases, extras kept."""

    model_config = ConfigDict(
        extra="allow",
        frozen=True,
        strict=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
    )
    strict_fields: ClassVar[bool] = False
    """True for the RayService/RayCluster types whose every field raysvc knows."""


class KnownModel(K8sModel):
    """A model whose unknown fields are worth a warning (the API server prunes them)."""

    strict_fields: ClassVar[bool] = True


class ObjectMeta(K8sModel):
    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class ContainerPort(K8sModel):
    name: str | None = None
    container_port: Int32
    protocol: str | None = None


class EnvVar(K8sModel):
    name: str
    value: str | None = None
    value_from: dict[str, Any] | None = None


class ResourceRequirements(K8sModel):
    limits: dict[str, Quantity] | None = None
    requests: dict[str, Quantity] | None = None


class Container(K8sModel):
    name: str
    image: str | None = None
    ports: list[ContainerPort] | None = None
    env: list[EnvVar] | None = None
    resources: ResourceRequirements | None = None
    volume_mounts: list[dict[str, Any]] | None = None


class PodSpec(K8sModel):
    containers: list[Container] = Field(default_factory=list)
    init_containers: list[Container] | None = None
    restart_policy: str | None = None


class PodTemplateSpec(K8sModel):
    metadata: dict[str, Any] | None = None
    spec: PodSpec | None = None


class HeadGroupSpec(KnownModel):
    template: PodTemplateSpec
    head_service: dict[str, Any] | None = None
    enable_ingress: bool | None = None
    labels: dict[str, str] | None = None
    resources: dict[str, str] | None = None
    ray_start_params: dict[str, str] | None = None
    service_type: str | None = None


class ScaleStrategy(KnownModel):
    workers_to_delete: list[str] | None = None


class WorkerGroupSpec(KnownModel):
    group_name: str
    template: PodTemplateSpec
    replicas: Int32 | None = None
    min_replicas: Int32 | None = None
    max_replicas: Int32 | None = None
    num_of_hosts: Int32 | None = None
    priority: Int32 | None = None
    idle_timeout_seconds: Int32 | None = None
    labels: dict[str, str] | None = None
    resources: dict[str, str] | None = None
    ray_start_params: dict[str, str] | None = None
    scale_strategy: ScaleStrategy | None = None
    suspend: bool | None = None


class AutoscalerOptions(KnownModel):
    version: str | None = None
    idle_timeout_seconds: Int32 | None = None
    upscaling_mode: str | None = None
    image: str | None = None
    image_pull_policy: str | None = None
    env: list[EnvVar] | None = None
    env_from: list[dict[str, Any]] | None = None
    resources: ResourceRequirements | None = None
    security_context: dict[str, Any] | None = None
    volume_mounts: list[dict[str, Any]] | None = None


class RayClusterUpgradeStrategy(KnownModel):
    type: str | None = None


class GcsFaultToleranceOptions(KnownModel):
    backend: str | None = None
    redis_address: str | None = None
    redis_username: dict[str, Any] | None = None
    redis_password: dict[str, Any] | None = None
    external_storage_namespace: str | None = None
    storage: dict[str, Any] | None = None


class AuthOptions(KnownModel):
    mode: str | None = None
    secret_name: str | None = None
    enable_k8s_token_auth: bool | None = Field(default=None, alias="enableK8sTokenAuth")


class RayClusterSpec(KnownModel):
    head_group_spec: HeadGroupSpec
    worker_group_specs: list[WorkerGroupSpec] | None = None
    ray_version: str | None = None
    enable_in_tree_autoscaling: bool | None = None
    autoscaler_options: AutoscalerOptions | None = None
    upgrade_strategy: RayClusterUpgradeStrategy | None = None
    gcs_fault_tolerance_options: GcsFaultToleranceOptions | None = None
    auth_options: AuthOptions | None = None
    head_service_annotations: dict[str, str] | None = None
    managed_by: str | None = None
    suspend: bool | None = None
    network_policy: dict[str, Any] | None = None
    tls_options: dict[str, Any] | None = None
    history_server_options: dict[str, Any] | None = None


class ClusterUpgradeOptions(KnownModel):
    max_surge_percent: Int32 | None = None
    step_size_percent: Int32 | None = None
    interval_seconds: Int32 | None = None
    gateway_class_name: str | None = None


class RayServiceUpgradeStrategy(KnownModel):
    type: str | None = None
    cluster_upgrade_options: ClusterUpgradeOptions | None = None


class RayServiceSpecV1Alpha1(KnownModel):
    """The ``ray.io/v1alpha1`` spec, frozen at KubeRay's December 2023 feature set."""

    serve_config_v2: str | None = None
    ray_cluster_config: RayClusterSpec
    service_unhealthy_second_threshold: Int32 | None = None
    deployment_unhealthy_second_threshold: Int32 | None = None
    serve_service: dict[str, Any] | None = None


class RayServiceSpec(RayServiceSpecV1Alpha1):
    """The ``ray.io/v1`` spec."""

    upgrade_strategy: RayServiceUpgradeStrategy | None = None
    ray_cluster_deletion_delay_seconds: Int32 | None = None
    exclude_head_pod_from_serve_svc: bool | None = None
    managed_by: str | None = None
    suspend: bool | None = None


class _RayServiceBase(K8sModel):
    kind: Literal["RayService"]
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    status: dict[str, Any] | None = None


class RayServiceV1(_RayServiceBase):
    api_version: Literal["ray.io/v1"]
    spec: RayServiceSpec


class RayServiceV1Alpha1(_RayServiceBase):
    api_version: Literal["ray.io/v1alpha1"]
    spec: RayServiceSpecV1Alpha1


RayService = RayServiceV1 | RayServiceV1Alpha1


def model_for(api_version: str) -> type[RayServiceV1] | type[RayServiceV1Alpha1]:
    """The model class for a RayService ``apiVersion``; ``KeyError`` for any other."""
    if api_version == "ray.io/v1":
        return RayServiceV1
    if api_version == "ray.io/v1alpha1":
        return RayServiceV1Alpha1
    raise KeyError(api_version)
