"""Checking a parsed serveConfigV2, application by application, each application once.

Most of what is checked depends on one application alone (its shape, import path, runtime_env,
deployments, unknown keys); only names and route prefixes are compared across applications.
The per-application part is memoized by the application's content, so a config in which one
application of a hundred changed costs one application's checks, not a hundred. Findings are
kept relative to the application and placed under ``applications[i]`` when combined, in
exactly the order a check of the whole document gives them.

Rules: Ray's ``ServeDeploySchema`` (the models, ``rayservice.servemodels``), and what Ray accepts
but only fails on later (route prefixes, ``working_dir`` URIs, per-application host/port).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from pydantic import BaseModel, ValidationError

from rayservice.errors import FieldError, FieldWarning, Path, Reason
from rayservice.hashing import canonical_json
from rayservice.memo import TextMemo
from rayservice.servemodels import RENAMED, ApplicationConfig, ServeConfig
from rayservice.shape import field_errors, unknown_fields

__all__ = ["WORKING_DIR_EXTENSIONS", "check_config"]

WORKING_DIR_EXTENSIONS: Final = (".zip", ".tar.gz", ".tgz", ".tar.xz")
_URI: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_IMPORT_PATH: Final = re.compile(r"^[^.:]([^:]*[^.:])?(:[^.:]([^:]*[^.:])?)?$")
_NO_NAME: Final = object()


@dataclass(frozen=True, slots=True)
class _AppCheck:
    """What one application's content says; paths are relative to the application."""

    valid: bool
    """The application has Ray's shape (no shape error)."""
    shape: tuple[FieldError, ...]
    mapping: bool
    """False when the entry is not a mapping at all: only its shape error applies."""
    name: object
    """``str`` for a name that takes part in the uniqueness check, else ``_NO_NAME``."""
    prefix: str | None
    """The route prefix if it is a string (the default "/" when unset)."""
    explicit_prefix: bool
    prefix_format: tuple[FieldError, ...]
    local: tuple[FieldError, ...]
    deployments: tuple[FieldError, ...]
    warnings: tuple[FieldWarning, ...]


_APPS: Final[TextMemo[_AppCheck]] = TextMemo(max_chars=2 * 1024 * 1024, max_entries=1024)
"""Checks by the canonical JSON of the application."""


def check_config(
    data: dict[str, Any], base: Path, *, applications: Sequence[str] | None = None
) -> tuple[list[FieldError], list[FieldWarning], bool]:
    """Check a Serve config document; True with the findings when it has Serve's shape and no
    error.

    ``applications``, when given, are the canonical JSON texts of the applications (``data``
    then has no ``applications`` key): an application checked before is not even loaded.
    """
    errors: list[FieldError] = []
    if applications is not None:
        sources: Sequence[object] = applications
        canonical = True
    else:
        raw_apps = data.get("applications")
        if not isinstance(raw_apps, list):
            try:
                ServeConfig.model_validate(data)
            except ValidationError as exc:
                errors.extend(field_errors(exc, ServeConfig, base))
            return errors, [], False
        sources, canonical = raw_apps, False
    try:
        top = ServeConfig.model_validate({**data, "applications": []})
    except ValidationError as exc:
        errors.extend(field_errors(exc, ServeConfig, base))
        top = None
    checks = [_check_app(source, canonical=canonical) for source in sources]
    paths = [(*base, "applications", index) for index in range(len(sources))]
    for check, path in zip(checks, paths, strict=True):
        if check.shape:
            errors.extend(_under(path, check.shape))
    errors.extend(_across(checks, paths))
    for check, path in zip(checks, paths, strict=True):
        if check.deployments:
            errors.extend(_under(path, check.deployments))
    warnings: list[FieldWarning] = []
    if not sources:
        warnings.append(
            FieldWarning(
                (*base, "applications"), "no applications: the RayService never becomes ready"
            )
        )
    warnings.extend(_unknown_key_warnings(top, base))
    for check, path in zip(checks, paths, strict=True):
        if check.warnings:
            warnings.extend(_under(path, check.warnings))
    return errors, warnings, not errors and top is not None and all(c.valid for c in checks)


def _check_app(source: object, *, canonical: bool) -> _AppCheck:
    """The checks of one application, given as JSON data or (``canonical``) as its canonical
    JSON text."""
    if canonical:
        assert isinstance(source, str)
        key = source
    else:
        try:
            key = canonical_json(source)
        except (TypeError, ValueError, RecursionError):
            return _check_app_afresh(source)
    found = _APPS.get(key)
    if found is None:
        found = _check_app_afresh(orjson.loads(key) if canonical else source)
        _APPS.put(key, found)
    return found


def _check_app_afresh(raw: object) -> _AppCheck:
    try:
        model: ApplicationConfig | None = ApplicationConfig.model_validate(raw)
        shape: tuple[FieldError, ...] = ()
    except ValidationError as exc:
        model, shape = None, tuple(field_errors(exc, ApplicationConfig))
    if not isinstance(raw, dict):
        return _AppCheck(model is not None, shape, False, _NO_NAME, None, False, (), (), (), ())
    raw_name = raw.get("name", "default")
    # Ray reads an integer name as its text; other types are shape errors, not names.
    named = isinstance(raw_name, str | int) and not isinstance(raw_name, bool)
    name = str(raw_name) if named else _NO_NAME
    prefix = raw.get("route_prefix", "/")
    return _AppCheck(
        valid=model is not None,
        shape=shape,
        mapping=True,
        name=name,
        prefix=prefix if isinstance(prefix, str) else None,
        explicit_prefix="route_prefix" in raw,
        prefix_format=tuple(_prefix_format(prefix)) if isinstance(prefix, str) else (),
        local=tuple(_local(raw)),
        deployments=tuple(_check_deployments(model)) if model is not None else (),
        warnings=tuple(_unknown_key_warnings(model, ())) if model is not None else (),
    )


def _under(path: Path, found: tuple[Any, ...]) -> Iterator[Any]:
    """Findings of an application, placed under its path."""
    for item in found:
        if isinstance(item, FieldError):
            yield FieldError((*path, *item.path), item.reason, item.value, item.detail)
        else:
            yield FieldWarning((*path, *item.path), item.message)


def _across(checks: list[_AppCheck], paths: list[Path]) -> Iterator[FieldError]:
    """Names and route prefixes must be unique; each application's own findings in between,
    in document order."""
    names: dict[str, int] = {}
    prefixes: dict[str, int] = {}
    for index, (check, path) in enumerate(zip(checks, paths, strict=True)):
        if not check.mapping:
            continue
        name = check.name
        if isinstance(name, str):
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
        if check.prefix is not None:
            if check.prefix_format:
                yield from _under(path, check.prefix_format)
            if check.prefix in prefixes:
                implicit = (
                    "" if check.explicit_prefix else " (the default when route_prefix is unset)"
                )
                yield FieldError(
                    (*path, "route_prefix"),
                    Reason.DUPLICATE,
                    check.prefix,
                    f"already used by applications[{prefixes[check.prefix]}]{implicit}",
                )
            else:
                prefixes[check.prefix] = index
        if check.local:
            yield from _under(path, check.local)


def _prefix_format(prefix: str) -> Iterator[FieldError]:
    field = ("route_prefix",)
    if not prefix.startswith("/"):
        yield FieldError(field, Reason.INVALID, prefix, "must start with a forward slash ('/')")
    elif prefix != "/" and prefix.endswith("/"):
        yield FieldError(field, Reason.INVALID, prefix, "may not end with a trailing '/'")
    elif "{" in prefix or "}" in prefix:
        yield FieldError(field, Reason.INVALID, prefix, "may not contain wildcards")


def _local(raw: dict[str, Any]) -> Iterator[FieldError]:
    """The application's own string rules: import path, host/port, runtime_env."""
    import_path = raw.get("import_path")
    if isinstance(import_path, str) and not (
        _IMPORT_PATH.match(import_path) and re.search(r"[.:]", import_path)
    ):
        yield FieldError(
            ("import_path",),
            Reason.INVALID,
            import_path,
            "must have the form module.attribute or module:attribute",
        )
    for key in ("host", "port"):
        if key in raw:
            yield FieldError(
                (key,),
                Reason.FORBIDDEN,
                detail=f"set {key} in http_options at the top level, not per application",
            )
    runtime_env = raw.get("runtime_env")
    if isinstance(runtime_env, dict):
        yield from _check_runtime_env(runtime_env, ("runtime_env",))


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


def _check_deployments(app: ApplicationConfig) -> Iterator[FieldError]:
    seen: dict[str, int] = {}
    for index, deployment in enumerate(app.deployments):
        field = ("deployments", index)
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


def _unknown_key_warnings(model: BaseModel | None, base: Path) -> Iterator[FieldWarning]:
    for path, owner in unknown_fields(model, base):
        key = path[-1]
        if not isinstance(key, str) or (
            isinstance(owner, ApplicationConfig) and key in ("host", "port")
        ):
            continue  # per-application host/port are errors
        yield FieldWarning(path, _unknown_key_message(key, owner))


def _unknown_key_message(key: str, model: BaseModel) -> str:
    if key in RENAMED:
        return f"renamed to {RENAMED[key]}; Ray ignores {key}"
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()
    if snake != key and snake in type(model).model_fields:
        return f"unknown key, ignored by Ray (did you mean {snake}?)"
    return "unknown key, ignored by Ray"
