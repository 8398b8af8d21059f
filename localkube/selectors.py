"""Label and field selectors: parsing their string syntax and matching objects.

Owns the selector grammar of ``k8s.io/apimachinery/pkg/labels`` (``=``, ``==``, ``!=``, ``in``,
``notin``, ``key``, ``!key``, ``>``/``<``; comma means AND) and of ``fields`` (``=``, ``==``,
``!=``), plus ``metav1.LabelSelector`` objects (``matchLabels``/``matchExpressions``) as webhooks'
``namespaceSelector``/``objectSelector`` use them. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FieldSelector",
    "LabelSelector",
    "SelectorError",
    "field_value",
    "match_label_selector_object",
    "parse_field_selector",
    "parse_label_selector",
]


class SelectorError(ValueError):
    """A selector that does not parse; the server answers 400 with this message."""


_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_KEY_RE = re.compile(
    rf"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_NAME}$"
)
_VALUE_RE = re.compile(rf"^({_NAME})?$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key, "")
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        if self.op in ("=", "in"):
            return has and value in self.values
        if self.op in ("!=", "notin"):
            return not has or value not in self.values
        if not has:
            return False
        try:
            number, bound = int(value), int(self.values[0])
        except ValueError:
            return False
        return number > bound if self.op == "gt" else number < bound


@dataclass(frozen=True)
class LabelSelector:
    """A parsed label selector; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


def _split_top(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _check_key(key: str, whole: str) -> str:
    if not _KEY_RE.fullmatch(key) or len(key.rpartition("/")[2]) > 63:
        raise SelectorError(
            f"unable to parse requirement: {key!r}: name part must consist of alphanumeric "
            f"characters, '-', '_' or '.', and must start and end with an alphanumeric character"
            if key
            else f"unable to parse requirement: found '', expected: identifier in {whole!r}"
        )
    return key


def _check_value(value: str) -> str:
    if not _VALUE_RE.fullmatch(value) or len(value) > 63:
        raise SelectorError(
            f"unable to parse requirement: values[0][{value}]: Invalid value: {value!r}: a valid "
            f"label must be an empty string or consist of alphanumeric characters, '-', '_' or "
            f"'.', and must start and end with an alphanumeric character"
        )
    return value


_SET_RE = re.compile(r"^\s*(\S+)\s+(in|notin)\s*\((.*)\)\s*$")
_CMP_RE = re.compile(r"^\s*([^=!<>\s]+)\s*(==|=|!=|>|<)\s*(.*?)\s*$")


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse ``labelSelector`` query syntax; raises :class:`SelectorError` on bad syntax."""
    if text is None or not text.strip():
        return LabelSelector()
    requirements = []
    for raw in _split_top(text):
        part = raw.strip()
        if not part:
            raise SelectorError(
                f"unable to parse requirement: found '', expected: identifier in {text!r}"
            )
        if set_match := _SET_RE.match(part):
            key = _check_key(set_match.group(1), text)
            values = tuple(_check_value(v.strip()) for v in set_match.group(3).split(","))
            requirements.append(Requirement(key, set_match.group(2), values))
        elif part.startswith("!"):
            requirements.append(Requirement(_check_key(part[1:].strip(), text), "!"))
        elif cmp_match := _CMP_RE.match(part):
            key = _check_key(cmp_match.group(1), text)
            op = {"==": "=", "=": "=", "!=": "!=", ">": "gt", "<": "lt"}[cmp_match.group(2)]
            value = cmp_match.group(3)
            if op in ("gt", "lt") and not re.fullmatch(r"-?\d+", value):
                raise SelectorError(
                    "unable to parse requirement: for 'Gt', 'Lt' "
                    "operators, the value must be an integer"
                )
            requirements.append(Requirement(key, op, (_check_value(value),)))
        elif re.fullmatch(r"\S+", part):
            requirements.append(Requirement(_check_key(part, text), "exists"))
        else:
            raise SelectorError(f"unable to parse requirement: {part!r} in {text!r}")
    return LabelSelector(tuple(requirements))


def match_label_selector_object(
    selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None
) -> bool:
    """Match a ``metav1.LabelSelector`` object; ``None`` or ``{}`` matches everything."""
    if not selector:
        return True
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        if not isinstance(expr, Mapping):
            return False
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        has = key in labels
        if op == "In" and not (has and labels[key] in values):
            return False
        if op == "NotIn" and has and labels[key] in values:
            return False
        if op == "Exists" and not has:
            return False
        if op == "DoesNotExist" and has:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


@dataclass(frozen=True)
class FieldSelector:
    """A parsed field selector: (path, must-equal?, value) terms joined by AND."""

    terms: tuple[tuple[str, bool, str], ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all((field_value(obj, path) == value) == equal for path, equal, value in self.terms)

    @property
    def paths(self) -> set[str]:
        return {path for path, _, _ in self.terms}


def _split_escaped(text: str, sep: str) -> list[str]:
    parts, current, escaped = [], [], False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def parse_field_selector(text: str | None, allowed: frozenset[str]) -> FieldSelector:
    """Parse ``fieldSelector``; only paths in ``allowed`` are accepted (else 400)."""
    if text is None or not text.strip():
        return FieldSelector()
    terms = []
    for part in _split_escaped(text, ","):
        match = re.fullmatch(r"\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*", part.replace("\\=", "\0"))
        if match is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        path, op, value = match.group(1), match.group(2), match.group(3).replace("\0", "=")
        if path not in allowed:
            raise SelectorError(f"field label not supported: {path}")
        terms.append((path, op != "!=", value))
    return FieldSelector(tuple(terms))


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string form a field selector compares against (``""`` when absent)."""
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return ""
        current = current.get(part)
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)
