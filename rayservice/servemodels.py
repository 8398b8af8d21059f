"""Ray Serve's multi-application config (``ServeDeploySchema``) as lax pydantic models.

Lax like Ray's own: numbers are coerced to strings where Ray accepts them, unknown keys are kept
(``model_extra``) and reported as warnings by ``rayservice.serveapps``. Frozen: results built from
them are memoized.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "RENAMED",
    "ApplicationConfig",
    "AutoscalingConfig",
    "DeploymentConfig",
    "GRPCOptions",
    "HTTPOptions",
    "RayActorOptions",
    "ServeConfig",
    "ServeModel",
]


def _num_replicas(value: object) -> object:
    if value is None or value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError('must be an integer greater than or equal to 1, or "auto"')
    return value


class ServeModel(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, coerce_numbers_to_str=True)
    strict_fields: ClassVar[bool] = True


class AutoscalingConfig(ServeModel):
    min_replicas: Annotated[int, Field(ge=0)] | None = None
    initial_replicas: Annotated[int, Field(ge=0)] | None = None
    max_replicas: Annotated[int, Field(ge=1)] | None = None
    target_ongoing_requests: Annotated[float, Field(gt=0)] | None = None
    metrics_interval_s: Annotated[float, Field(gt=0)] | None = None
    look_back_period_s: Annotated[float, Field(gt=0)] | None = None
    smoothing_factor: Annotated[float, Field(gt=0)] | None = None
    upscale_smoothing_factor: Annotated[float, Field(gt=0)] | None = None
    downscale_smoothing_factor: Annotated[float, Field(gt=0)] | None = None
    upscaling_factor: Annotated[float, Field(gt=0)] | None = None
    downscaling_factor: Annotated[float, Field(gt=0)] | None = None
    upscale_delay_s: Annotated[float, Field(ge=0)] | None = None
    downscale_delay_s: Annotated[float, Field(ge=0)] | None = None
    downscale_to_zero_delay_s: Annotated[float, Field(ge=0)] | None = None
    aggregation_function: str | None = None
    policy: dict[str, Any] | None = None


class RayActorOptions(ServeModel):
    strict_fields: ClassVar[bool] = False
    runtime_env: dict[str, Any] | None = None
    num_cpus: Annotated[float, Field(ge=0)] | None = None
    num_gpus: Annotated[float, Field(ge=0)] | None = None
    memory: Annotated[float, Field(ge=0)] | None = None
    object_store_memory: Annotated[float, Field(ge=0)] | None = None
    resources: dict[str, float] | None = None
    accelerator_type: str | None = None
    label_selector: dict[str, str] | None = None


class DeploymentConfig(ServeModel):
    name: str
    num_replicas: Annotated[int | str | None, BeforeValidator(_num_replicas)] = None
    max_ongoing_requests: Annotated[int, Field(gt=0)] | None = None
    max_queued_requests: int | None = None
    user_config: dict[str, Any] | None = None
    autoscaling_config: AutoscalingConfig | None = None
    graceful_shutdown_wait_loop_s: Annotated[float, Field(ge=0)] | None = None
    graceful_shutdown_timeout_s: Annotated[float, Field(ge=0)] | None = None
    health_check_period_s: Annotated[float, Field(gt=0)] | None = None
    health_check_timeout_s: Annotated[float, Field(gt=0)] | None = None
    ray_actor_options: RayActorOptions | None = None
    placement_group_bundles: list[dict[str, float]] | None = None
    placement_group_strategy: str | None = None
    max_replicas_per_node: Annotated[int, Field(ge=1, le=100)] | None = None
    logging_config: dict[str, Any] | None = None
    request_router_config: dict[str, Any] | None = None


class ApplicationConfig(ServeModel):
    name: str = "default"
    route_prefix: str | None = "/"
    import_path: str
    runtime_env: dict[str, Any] | None = None
    deployments: list[DeploymentConfig] = Field(default_factory=list)
    args: dict[str, Any] | None = None
    external_scaler_enabled: bool | None = None
    logging_config: dict[str, Any] | None = None


class HTTPOptions(ServeModel):
    host: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    root_path: str | None = None
    request_timeout_s: Annotated[float, Field(gt=0)] | None = None
    keep_alive_timeout_s: Annotated[float, Field(ge=0)] | None = None
    ssl_keyfile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile_password: str | None = None
    ssl_ca_certs: str | None = None


class GRPCOptions(ServeModel):
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    grpc_servicer_functions: list[str] | None = None
    request_timeout_s: Annotated[float, Field(gt=0)] | None = None
    enable_reflection: bool | None = None


class ServeConfig(ServeModel):
    applications: list[ApplicationConfig]
    proxy_location: Literal["Disabled", "HeadOnly", "EveryNode"] | None = None
    http_options: HTTPOptions | None = None
    grpc_options: GRPCOptions | None = None
    logging_config: dict[str, Any] | None = None
    target_capacity: Annotated[float, Field(ge=0, le=100)] | None = None


# Keys Ray renamed; a config still using them is silently ignored by Ray.
RENAMED: Final = {
    "max_concurrent_queries": "max_ongoing_requests",
    "target_num_ongoing_requests_per_replica": "target_ongoing_requests",
    "target_ongoing_requests_per_replica": "target_ongoing_requests",
}
