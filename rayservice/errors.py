"""Field errors and warnings in the Kubernetes API server's style.

Owns how a problem with an object is described: the path of the field, the reason, the offending
value and a detail, rendered as the API server renders ``field.Error``::

    spec.rayClusterConfig.workerGroupSpecs[0].minReplicas: Invalid value: 6: must be less than or
    equal to maxReplicas (5)

Error tree of this package (everything else a caller sees is data, not exceptions)::

    RayServiceError                 base of the exceptions raised by ``rayservice``
    └── NotARayServiceError         the input is not a RayService object at all (a bad request,
                                    not a bad object: the webhook answers 400, the CLI exits 2)

A bad RayService never raises: rules return lists of ``FieldError`` and ``FieldWarning``.
"""

from __future__ import annotations

import enum
import json
import reprlib
from dataclasses import dataclass
from typing import Final

__all__ = [
    "NO_VALUE",
    "FieldError",
    "FieldWarning",
    "Key",
    "NotARayServiceError",
    "Path",
    "RayServiceError",
    "Reason",
    "render_path",
    "render_value",
    "short_repr",
]


class RayServiceError(Exception):
    """Base of the exceptions raised by the ``rayservice`` package."""


class NotARayServiceError(RayServiceError):
    """The input is not a RayService object (wrong type, apiVersion or kind)."""


@dataclass(frozen=True, slots=True)
class Key:
    """A map key inside a path, rendered ``[key]`` like ``metadata.annotations[ray.io/x]``."""

    name: str


PathElement = str | int | Key
Path = tuple[PathElement, ...]


def render_path(path: Path) -> str:
    """Render ``("spec", "groups", 0, Key("a.b"))`` as ``spec.groups[0][a.b]``."""
    parts: list[str] = []
    for element in path:
        if isinstance(element, int):
            parts.append(f"[{element}]")
        elif isinstance(element, Key):
            parts.append(f"[{element.name}]")
        elif parts:
            parts.append(f".{element}")
        else:
            parts.append(element)
    return "".join(parts)


class _NoValue:
    """Marker for "this error has no value to show" (e.g. a required field)."""

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE: Final = _NoValue()

_MAX_VALUE_CHARS: Final = 80


def render_value(value: object) -> str:
    """Render a value as the API server does: strings quoted, numbers bare, objects as JSON.

    Long values are cut to about 80 characters so one bad field cannot flood a message; values
    JSON cannot render, or nested too deep to render, are shown as a bounded ``repr``.
    """
    if isinstance(value, str) and len(value) > _MAX_VALUE_CHARS:
        value = value[:_MAX_VALUE_CHARS]
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        text = short_repr(value)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3] + "..."
    return text


_REPR: Final = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxstring = _REPR.maxother = _MAX_VALUE_CHARS
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6


def short_repr(value: object, limit: int = _MAX_VALUE_CHARS) -> str:
    """``repr(value)`` cut to about ``limit`` characters, in time and depth bounded by the
    limit whatever the value (a string of megabytes, lists nested a thousand deep)."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Reason(enum.Enum):
    """The reasons of Kubernetes' ``field.ErrorType``, with their rendered text."""

    INVALID = "Invalid value"
    REQUIRED = "Required value"
    FORBIDDEN = "Forbidden"
    DUPLICATE = "Duplicate value"
    UNSUPPORTED = "Unsupported value"
    TOO_LONG = "Too long"

    @property
    def cause(self) -> str:
        """The ``details.causes[].reason`` the API server reports for this reason."""
        return _CAUSES[self]


_CAUSES: Final = {
    Reason.INVALID: "FieldValueInvalid",
    Reason.REQUIRED: "FieldValueRequired",
    Reason.FORBIDDEN: "FieldValueForbidden",
    Reason.DUPLICATE: "FieldValueDuplicate",
    Reason.UNSUPPORTED: "FieldValueNotSupported",
    Reason.TOO_LONG: "FieldValueTooLong",
}


@dataclass(frozen=True, slots=True)
class FieldError:
    """One thing wrong with one field; ``str()`` gives the API server's rendering.

    ``detail`` says what the value must be; for ``UNSUPPORTED`` it lists the supported values.
    """

    path: Path
    reason: Reason
    value: object = NO_VALUE
    detail: str = ""

    @property
    def field(self) -> str:
        """The rendered field path, e.g. ``spec.serveConfigV2.applications[1].route_prefix``."""
        return render_path(self.path)

    @property
    def message(self) -> str:
        """Everything after ``<field>: ``."""
        text = self.reason.value
        if self.reason in (Reason.INVALID, Reason.DUPLICATE, Reason.UNSUPPORTED) and (
            self.value is not NO_VALUE
        ):
            text = f"{text}: {render_value(self.value)}"
        if self.detail:
            text = f"{text}: {self.detail}"
        return text

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True, slots=True)
class FieldWarning:
    """Something allowed but worth telling the user; ``str()`` is ``<field>: <message>``."""

    path: Path
    message: str

    @property
    def field(self) -> str:
        """The rendered field path; empty for a warning about the whole object."""
        return render_path(self.path)

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.path else self.message
