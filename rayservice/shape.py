"""Turning pydantic's shape and type errors into ``FieldError``s with Kubernetes field paths.

pydantic reports ``loc`` tuples such as ``("spec", "labels", "app")``; whether ``"app"`` is a field
(rendered ``.app``) or a map key (rendered ``[app]``) depends on the model's types, so the
location is walked through the model's annotations. Messages are reworded to the API server's
vocabulary (``must be an integer``, ``Required value``).
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any, Final

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from rayservice.errors import NO_VALUE, FieldError, Key, Path, Reason

__all__ = ["field_errors", "unknown_fields", "walkable_fields"]

_TYPE_DETAILS: Final = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "string_type": "must be a string",
    "bool_type": "must be a boolean",
    "bool_parsing": "must be a boolean",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "list_type": "must be a list",
    "none_required": "must be null",
}


def field_errors(exc: ValidationError, model: type[BaseModel], base: Path = ()) -> list[FieldError]:
    """Convert every error of ``exc`` (raised validating ``model``) into a ``FieldError``."""
    return [_field_error(error, model, base) for error in exc.errors(include_url=False)]


def _field_error(error: ErrorDetails, model: type[BaseModel], base: Path) -> FieldError:
    path = base + _path(model, error["loc"])
    kind = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input", NO_VALUE)
    if kind == "missing":
        return FieldError(path, Reason.REQUIRED)
    if kind == "literal_error":
        expected = str(ctx["expected"]).replace("'", '"').replace(" or ", ", ")
        return FieldError(path, Reason.UNSUPPORTED, value, f"supported values: {expected}")
    if kind in _TYPE_DETAILS:
        return FieldError(path, Reason.INVALID, value, _TYPE_DETAILS[kind])
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        words = {
            "greater_than": ("gt", "greater than"),
            "greater_than_equal": ("ge", "greater than or equal to"),
            "less_than": ("lt", "less than"),
            "less_than_equal": ("le", "less than or equal to"),
        }[kind]
        return FieldError(path, Reason.INVALID, value, f"must be {words[1]} {ctx[words[0]]}")
    if kind == "value_error":
        return FieldError(path, Reason.INVALID, value, str(ctx.get("error", error["msg"])))
    message = error["msg"]
    return FieldError(path, Reason.INVALID, value, message[:1].lower() + message[1:])


def _path(model: type[BaseModel], loc: tuple[int | str, ...]) -> Path:
    out: list[str | int | Key] = []
    current: Any = model
    for element in loc:
        if element == "[key]":
            continue
        current = _unwrap(current)
        if isinstance(element, int):
            out.append(element)
            current = _item_type(current)
        elif isinstance(current, type) and issubclass(current, BaseModel):
            name, annotation = _model_field(current, element)
            out.append(name)
            current = annotation
        elif typing.get_origin(current) in (dict, Mapping):
            out.append(Key(element))
            args = typing.get_args(current)
            current = args[1] if len(args) == 2 else Any
        else:
            out.append(element)
            current = Any
    return tuple(out)


def _model_field(model: type[BaseModel], element: str) -> tuple[str, Any]:
    for name, info in model.model_fields.items():
        if element in (info.alias, name):
            return info.alias or name, info.annotation
    return element, Any


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``Optional`` wrappers down to the interesting type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _item_type(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (list, tuple):
        args = typing.get_args(annotation)
        return args[0] if args else Any
    return Any


def unknown_fields(value: object, base: Path = ()) -> Iterator[tuple[Path, BaseModel]]:
    """Yield the path of every field a model kept in ``model_extra``, with that model.

    Only models whose class sets ``strict_fields = True`` are reported: the others (pod templates,
    Services) are Kubernetes types raysvc only partly models, where unknown means "not read".
    Only fields whose type can hold such a model are walked.
    """
    if isinstance(value, BaseModel):
        if getattr(type(value), "strict_fields", False):
            for key in value.model_extra or {}:
                yield (*base, key), value
        for name, alias in walkable_fields(type(value)):
            child = getattr(value, name)
            if child is not None:
                yield from unknown_fields(child, (*base, alias))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from unknown_fields(item, (*base, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from unknown_fields(item, (*base, Key(str(key))))


@functools.cache
def walkable_fields(model: type[BaseModel]) -> tuple[tuple[str, str], ...]:
    """The fields of ``model`` whose type can hold a model with ``strict_fields``."""
    return tuple(
        (name, info.alias or name)
        for name, info in model.model_fields.items()
        if _may_hold_strict(info.annotation, set())
    )


def _may_hold_strict(annotation: Any, seen: set[type]) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return False
        seen.add(annotation)
        return bool(getattr(annotation, "strict_fields", False)) or any(
            _may_hold_strict(info.annotation, seen) for info in annotation.model_fields.values()
        )
    return any(_may_hold_strict(arg, seen) for arg in typing.get_args(annotation))
