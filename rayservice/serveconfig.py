"""``spec.serveConfigV2``: bounded parsing and checking of Ray Serve's multi-application config.

KubeRay treats serveConfigV2 as an opaque string and only learns it is wrong when Ray answers the
submission with a 400, or when an application goes DEPLOY_FAILED minutes later. Here the string is
parsed at admission:

- **Bounded.** At most ``MAX_BYTES`` of text; YAML aliases may not expand the document beyond
  ``MAX_NODES`` nodes (a "billion laughs" document is refused in milliseconds, with memory bounded
  by the input size because aliases share their target until expanded); libyaml caps nesting.
- **Like KubeRay's parser.** YAML 1.1 as in Go's yaml.v2 (``yes`` is a boolean), but timestamps
  stay strings (yaml.v2 decodes them to strings for untyped targets) and non-string keys become
  strings, so the document is always JSON.
- **Checked like Ray checks it**, plus what Ray only fails on after the submission (route
  prefixes, working_dir URIs). Unknown keys are warnings, not errors: Ray ignores them.

The result is immutable and keyed by the text alone, so it is memoized (``parse_serve_config``):
the webhook parses each distinct serveConfigV2 once, although both the mutating and the
validating admission and the next UPDATE's ``oldObject`` carry it again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from rayservice.errors import FieldError, FieldWarning, Path, Reason
from rayservice.hashing import digest
from rayservice.memo import TextMemo
from rayservice.shape import field_errors, unknown_fields
from rayservice.yamldoc import NotJsonError, YamlError, load_json_data

__all__ = [
    "MAX_BYTES",
    "SERVE_CONFIG_PATH",
    "ApplicationConfig",
    "DeploymentConfig",
    "ParsedServeConfig",
    "ServeConfig",
    "parse_serve_config",
]

SERVE_CONFIG_PATH: Final[Path] = ("spec", "serveConfigV2")
MAX_BYTES: Final = 1024 * 1024

WORKING_DIR_EXTENSIONS: Final = (".zip", ".tar.gz", ".tgz", ".tar.xz")
_URI: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_IMPORT_PATH: Final = re.compile(r"^[^.:]([^:]*[^.:])?(:[^.:]([^:]*[^.:])?)?$")


# ----------------------------------------------------------------------------------------------
# The model of Ray Serve's config (ServeDeploySchema), lax like Ray's own


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
_RENAMED: Final = {
    "max_concurrent_queries": "max_ongoing_requests",
    "target_num_ongoing_requests_per_replica": "target_ongoing_requests",
    "target_ongoing_requests_per_replica": "target_ongoing_requests",
}


# ----------------------------------------------------------------------------------------------
# The result


@dataclass(frozen=True, slots=True)
class ParsedServeConfig:
    """What one serveConfigV2 text means.

    ``canonical`` is the document as canonical JSON (the body to submit to Ray, and what
    ``hash`` hashes); both are ``None`` only when the text is not a valid YAML mapping.
    An absent or empty serveConfigV2 has ``config=None`` and the hash of ``null``.
    ``config`` is ``None`` unless the document has Serve's shape. Treat it as read-only.
    """

    config: ServeConfig | None
    canonical: str | None
    hash: str | None
    errors: tuple[FieldError, ...]
    warnings: tuple[FieldWarning, ...]

    @property
    def empty(self) -> bool:
        """True when there is no Serve config at all (absent, empty or only comments)."""
        return self.canonical == "null"


def parse_serve_config(text: str | None) -> ParsedServeConfig:
    """Parse and check a serveConfigV2 text; never raises for any input string.

    Errors and warnings carry paths under ``spec.serveConfigV2``. Memoized by the text.
    """
    if text is None:
        text = ""
    cached = _CACHE.get(text)
    if cached is None:
        cached = _parse(text)
        _CACHE.put(text, cached)
    return cached


_CACHE: Final[TextMemo[ParsedServeConfig]] = TextMemo(max_chars=4 * 1024 * 1024, max_entries=256)


def _parse(text: str) -> ParsedServeConfig:
    base = SERVE_CONFIG_PATH
    if len(text) > MAX_BYTES // 4 and len(text.encode("utf-8")) > MAX_BYTES:
        return _failed(
            FieldError(base, Reason.TOO_LONG, detail=f"may not be more than {MAX_BYTES} bytes")
        )
    try:
        data, canonical = load_json_data(text)
    except YamlError as exc:
        return _failed(FieldError(base, Reason.INVALID, detail=str(exc)))
    except NotJsonError as exc:
        return _failed(FieldError((*base, *exc.path), exc.reason, exc.value, exc.detail))
    if data is None:
        return ParsedServeConfig(None, canonical, digest(canonical), (), ())
    if not isinstance(data, dict):
        return _failed(
            FieldError(
                base, Reason.INVALID, detail="must be a YAML mapping with an applications list"
            )
        )
    errors, warnings, config = _validate(data, base)
    return ParsedServeConfig(config, canonical, digest(canonical), tuple(errors), tuple(warnings))


def _validate(
    data: dict[str, Any], base: Path
) -> tuple[list[FieldError], list[FieldWarning], ServeConfig | None]:
    """Check the document application by application, so one bad app hides nothing of the others."""
    errors: list[FieldError] = []
    raw_apps = data.get("applications")
    if not isinstance(raw_apps, list):
        try:
            ServeConfig.model_validate(data)
        except ValidationError as exc:
            errors.extend(field_errors(exc, ServeConfig, base))
        return errors, [], None
    try:
        top = ServeConfig.model_validate({**data, "applications": []})
    except ValidationError as exc:
        errors.extend(field_errors(exc, ServeConfig, base))
        top = None
    apps: list[tuple[int, ApplicationConfig, dict[str, Any]]] = []
    for index, raw in enumerate(raw_apps):
        path = (*base, "applications", index)
        try:
            apps.append((index, ApplicationConfig.model_validate(raw), raw))
        except ValidationError as exc:
            errors.extend(field_errors(exc, ApplicationConfig, path))
    errors.extend(_check(raw_apps, apps, base))
    warnings = list(_warnings(top, apps, base, empty=not raw_apps))
    if errors or top is None:
        return errors, warnings, None
    config = top.model_copy(update={"applications": [app for _, app, _ in apps]})
    return errors, warnings, config


def _failed(error: FieldError) -> ParsedServeConfig:
    return ParsedServeConfig(None, None, None, (error,), ())


# ----------------------------------------------------------------------------------------------
# Rules Ray applies on submission, and those it only fails on later


def _check(
    raw_apps: list[Any], apps: list[tuple[int, ApplicationConfig, dict[str, Any]]], base: Path
) -> Iterator[FieldError]:
    """Cross-field rules. Uniqueness and string rules read the raw document, so they also cover
    applications whose shape is wrong elsewhere; the rest needs a validated application."""
    names: dict[str, int] = {}
    prefixes: dict[str, int] = {}
    for index, raw in enumerate(raw_apps):
        if not isinstance(raw, dict):
            continue
        path = (*base, "applications", index)
        name = raw.get("name", "default")
        if isinstance(name, str | int) and not isinstance(name, bool):
            name = str(name)
            if not name:
                yield FieldError(
                    (*path, "name"), Reason.REQUIRED, detail="application names must be non-empty"
                )
            elif name in names:
                yield FieldError(
                    (*path, "name"),
                    Reason.DUPLICATE,
                    name,
                    f"already used by applications[{names[name]}]",
                )
            else:
                names[name] = index
        yield from _check_route_prefix(raw, path, prefixes)
        import_path = raw.get("import_path")
        if isinstance(import_path, str) and not (
            _IMPORT_PATH.match(import_path) and re.search(r"[.:]", import_path)
        ):
            yield FieldError(
                (*path, "import_path"),
                Reason.INVALID,
                import_path,
                "must have the form module.attribute or module:attribute",
            )
        for key in ("host", "port"):
            if key in raw:
                yield FieldError(
                    (*path, key),
                    Reason.FORBIDDEN,
                    detail=f"set {key} in http_options at the top level, not per application",
                )
        runtime_env = raw.get("runtime_env")
        if isinstance(runtime_env, dict):
            yield from _check_runtime_env(runtime_env, (*path, "runtime_env"))
    for index, app, _ in apps:
        yield from _check_deployments(app, (*base, "applications", index))


def _check_route_prefix(
    raw: dict[str, Any], path: Path, seen: dict[str, int]
) -> Iterator[FieldError]:
    prefix = raw.get("route_prefix", "/")
    if not isinstance(prefix, str):
        return  # null means no HTTP route; other types are shape errors
    field = (*path, "route_prefix")
    index = path[-1]
    if not prefix.startswith("/"):
        yield FieldError(field, Reason.INVALID, prefix, "must start with a forward slash ('/')")
    elif prefix != "/" and prefix.endswith("/"):
        yield FieldError(field, Reason.INVALID, prefix, "may not end with a trailing '/'")
    elif "{" in prefix or "}" in prefix:
        yield FieldError(field, Reason.INVALID, prefix, "may not contain wildcards")
    if prefix in seen:
        implicit = "" if "route_prefix" in raw else " (the default when route_prefix is unset)"
        yield FieldError(
            field,
            Reason.DUPLICATE,
            prefix,
            f"already used by applications[{seen[prefix]}]{implicit}",
        )
    elif isinstance(index, int):
        seen[prefix] = index


def _check_runtime_env(runtime_env: Mapping[str, Any] | None, path: Path) -> Iterator[FieldError]:
    if not runtime_env:
        return
    working_dir = runtime_env.get("working_dir")
    if working_dir is not None:
        field = (*path, "working_dir")
        if not isinstance(working_dir, str):
            yield FieldError(field, Reason.INVALID, working_dir, "must be a string")
        elif not _URI.match(working_dir):
            yield FieldError(
                field,
                Reason.INVALID,
                working_dir,
                "must be a remote URI (https://, s3://, gs://, file://) or a local:// URI",
            )
        elif not working_dir.startswith("local://") and not working_dir.lower().endswith(
            WORKING_DIR_EXTENSIONS
        ):
            yield FieldError(
                field,
                Reason.INVALID,
                working_dir,
                "must name a .zip, .tar.gz, .tgz or .tar.xz package",
            )
    py_modules = runtime_env.get("py_modules")
    if py_modules is not None:
        if not isinstance(py_modules, list):
            yield FieldError((*path, "py_modules"), Reason.INVALID, py_modules, "must be a list")
            return
        for index, module in enumerate(py_modules):
            if not isinstance(module, str) or not _URI.match(module):
                yield FieldError(
                    (*path, "py_modules", index),
                    Reason.INVALID,
                    module,
                    "must be a remote URI (https://, s3://, gs://, file://) or a local:// URI",
                )


def _check_deployments(app: ApplicationConfig, path: Path) -> Iterator[FieldError]:
    seen: dict[str, int] = {}
    for index, deployment in enumerate(app.deployments):
        field = (*path, "deployments", index)
        if not deployment.name:
            yield FieldError(
                (*field, "name"), Reason.REQUIRED, detail="deployment names must be non-empty"
            )
        elif deployment.name in seen:
            yield FieldError(
                (*field, "name"),
                Reason.DUPLICATE,
                deployment.name,
                f"already used by deployments[{seen[deployment.name]}]",
            )
        else:
            seen[deployment.name] = index
        autoscaling = deployment.autoscaling_config
        if autoscaling is None:
            continue
        if deployment.num_replicas not in (None, "auto"):
            yield FieldError(
                (*field, "num_replicas"),
                Reason.FORBIDDEN,
                detail='may not be set with autoscaling_config unless it is "auto"',
            )
        low, high = autoscaling.min_replicas, autoscaling.max_replicas
        if low is not None and high is not None and low > high:
            yield FieldError(
                (*field, "autoscaling_config", "min_replicas"),
                Reason.INVALID,
                low,
                f"must be less than or equal to max_replicas ({high})",
            )
        initial = autoscaling.initial_replicas
        if initial is not None:
            if low is not None and initial < low:
                yield FieldError(
                    (*field, "autoscaling_config", "initial_replicas"),
                    Reason.INVALID,
                    initial,
                    f"must be greater than or equal to min_replicas ({low})",
                )
            if high is not None and initial > high:
                yield FieldError(
                    (*field, "autoscaling_config", "initial_replicas"),
                    Reason.INVALID,
                    initial,
                    f"must be less than or equal to max_replicas ({high})",
                )


def _warnings(
    top: ServeConfig | None,
    apps: list[tuple[int, ApplicationConfig, dict[str, Any]]],
    base: Path,
    *,
    empty: bool,
) -> Iterator[FieldWarning]:
    if empty:
        yield FieldWarning(
            (*base, "applications"), "no applications: the RayService never becomes ready"
        )
    found = list(unknown_fields(top, base))
    for index, app, _ in apps:
        found.extend(unknown_fields(app, (*base, "applications", index)))
    for path, model in found:
        key = path[-1]
        if not isinstance(key, str) or (
            isinstance(model, ApplicationConfig) and key in ("host", "port")
        ):
            continue  # per-application host/port are errors, reported by _check
        yield FieldWarning(path, _unknown_key_message(key, model))


def _unknown_key_message(key: str, model: BaseModel) -> str:
    if key in _RENAMED:
        return f"renamed to {_RENAMED[key]}; Ray ignores {key}"
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()
    if snake != key and snake in type(model).model_fields:
        return f"unknown key, ignored by Ray (did you mean {snake}?)"
    return "unknown key, ignored by Ray"
