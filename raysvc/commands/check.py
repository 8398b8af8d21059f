"""``raysvc check``: the offline checker for CI pipelines and GitOps pre-merge checks.

Runs what the webhook would (defaults, validation, classification against ``--old``) on every
RayService document of a YAML file, without a cluster. Exit codes: 0 every RayService is
allowed, 1 any is denied, 2 usage errors and unreadable input (one line on stderr, never a
traceback). ``--output json`` is a public interface, documented in the README.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from rayservice import Evaluation, FieldError, FieldWarning, evaluate
from rayservice.errors import render_path, short_repr
from rayservice.yamldoc import NotJsonError, YamlError, load_json_documents
from raysvc.cli import EXIT_DENIED, EXIT_OK, EXIT_USAGE

__all__ = [
    "Checked",
    "InputError",
    "load_documents",
    "register",
    "render_json",
    "render_text",
    "run",
]

MAX_INPUT_BYTES = 8 * 1024 * 1024
API_VERSIONS = ("ray.io/v1", "ray.io/v1alpha1")


class InputError(Exception):
    """Input that cannot be checked: unreadable, not YAML, no RayService. Exit code 2."""


@dataclass(frozen=True, slots=True)
class Document:
    """A RayService read from a file, and where: its document number (from 1)."""

    number: int
    obj: Mapping[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        """``(namespace, name)``, the namespace defaulting as kubectl defaults it."""
        meta = self.obj.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        namespace, name = meta.get("namespace"), meta.get("name")
        return (
            namespace if isinstance(namespace, str) and namespace else "default",
            name if isinstance(name, str) else "",
        )


@dataclass(frozen=True, slots=True)
class Checked:
    """The verdict on one document, with what only the file as a whole shows."""

    document: int
    result: Evaluation
    notes: tuple[FieldWarning, ...] = ()

    @property
    def label(self) -> str:
        """The RayService's name, or which document it is when it has none."""
        return self.result.name or f"document {self.document} (no name)"

    @property
    def warnings(self) -> tuple[FieldWarning, ...]:
        return (*self.notes, *self.result.warnings)


def register(subparsers: Any) -> None:
    """Add the ``check`` subcommand."""
    parser = subparsers.add_parser(
        "check",
        help="default, validate and classify RayService YAML offline",
        description="Default, validate and classify every RayService in a YAML file, as the "
        "admission webhook would. Exit 0 when all are allowed, 1 when any is denied, 2 for "
        "usage errors and unreadable input.",
    )
    parser.add_argument(
        "new", metavar="NEW.yaml", help="the RayService YAML to check ('-' for stdin)"
    )
    parser.add_argument(
        "--old",
        metavar="OLD.yaml",
        help="the current version to classify the change from ('-' for stdin; default: none, "
        "every RayService is a create)",
    )
    parser.add_argument(
        "--output",
        choices=("text", "json"),
        default="text",
        help="output format (default: %(default)s)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Check ``args.new`` (against ``args.old``) and print the verdicts."""
    if args.new == "-" and args.old == "-":
        print("raysvc check: NEW.yaml and --old cannot both be stdin ('-')", file=sys.stderr)
        return EXIT_USAGE
    try:
        new = load_documents(args.new, required=True)
        old = _by_key(load_documents(args.old)) if args.old else {}
    except InputError as exc:
        print(f"raysvc check: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # load_documents keeps RayService documents only, so evaluate cannot refuse one.
    checked = [
        Checked(doc.number, evaluate(doc.obj, old.get(doc.key)), _duplicates(doc, new))
        for doc in new
    ]
    if args.output == "json":
        render_json(checked, sys.stdout)
    else:
        render_text(checked, sys.stdout)
    return EXIT_OK if all(item.result.allowed for item in checked) else EXIT_DENIED


def _by_key(docs: Sequence[Document]) -> dict[tuple[str, str], Mapping[str, Any]]:
    """The old side by namespace/name; of duplicates the last wins, as with kubectl apply."""
    return {doc.key: doc.obj for doc in docs}


def _duplicates(doc: Document, docs: Sequence[Document]) -> tuple[FieldWarning, ...]:
    others = [other.number for other in docs if other.key == doc.key and other is not doc]
    if not others or not doc.key[1]:
        return ()
    namespace, name = doc.key
    listed = ", ".join(str(number) for number in others)
    return (
        FieldWarning(
            (),
            f"{namespace}/{name} is also in document {listed}: "
            "applying the file keeps only the last",
        ),
    )


def load_documents(source: str | None, *, required: bool = False) -> list[Document]:
    """Every RayService document of a YAML file (``kind: List`` items included), numbered.

    Other kinds are skipped; a RayService of an unsupported apiVersion, unreadable input, bad
    YAML, or (when ``required``) no RayService at all raise ``InputError``, naming the
    document and the field.
    """
    if source is None:
        return []
    label = "stdin" if source == "-" else source
    text = _read(source, label)
    found: list[Document] = []
    number = 0
    documents = load_json_documents(text)
    while True:
        number += 1
        try:
            data = next(documents)
        except StopIteration:
            break
        except YamlError as exc:
            raise InputError(f"{label}: {exc}") from exc
        except NotJsonError as exc:
            where = f"{render_path(exc.path)}: " if exc.path else ""
            problem = FieldError(exc.path, exc.reason, exc.value, exc.detail).message
            raise InputError(f"{label}: document {number}: {where}{problem}") from exc
        for obj in _expand(data):
            if not isinstance(obj, Mapping) or obj.get("kind") != "RayService":
                continue
            api_version = obj.get("apiVersion")
            if api_version is None:
                raise InputError(
                    f"{label}: document {number}: RayService has no apiVersion "
                    f"({' or '.join(API_VERSIONS)})"
                )
            if api_version not in API_VERSIONS:
                raise InputError(
                    f"{label}: document {number}: RayService apiVersion "
                    f"{short_repr(api_version)} is not supported ({', '.join(API_VERSIONS)})"
                )
            found.append(Document(number, obj))
    if required and not found:
        raise InputError(f"{label}: no RayService document found")
    return found


def _read(source: str, label: str) -> str:
    try:
        if source == "-":
            data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        else:
            with Path(source).open("rb") as handle:
                data = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read {label}: {exc.strerror or exc}") from exc
    if len(data) > MAX_INPUT_BYTES:
        raise InputError(f"{label}: larger than {MAX_INPUT_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{label}: not UTF-8 text") from exc


def _expand(doc: object) -> Iterator[object]:
    """A document, or the items of a ``kind: List``."""
    if (
        isinstance(doc, Mapping)
        and doc.get("kind") == "List"
        and isinstance(doc.get("items"), list)
    ):
        yield from doc["items"]
    elif doc is not None:
        yield doc


def as_json(item: Checked) -> dict[str, Any]:
    """The public JSON form of one verdict (see the README)."""
    result = item.result
    return {
        "document": item.document,
        "name": result.name,
        "namespace": result.namespace,
        "apiVersion": result.api_version,
        "allowed": result.allowed,
        "errors": [{"field": e.field, "message": e.message} for e in result.errors],
        "warnings": [{"field": w.field, "message": w.message} for w in item.warnings],
        "change": result.change.kind.value,
        "summary": result.summary,
        "consequences": list(result.consequences),
        "hashes": {"cluster": result.hashes.cluster, "serve": result.hashes.serve},
        "patch": result.patch_json(),
    }


def render_json(checked: Sequence[Checked], out: TextIO) -> None:
    """Print a JSON array, one object per RayService."""
    json.dump([as_json(item) for item in checked], out, indent=2)
    out.write("\n")


def render_text(checked: Sequence[Checked], out: TextIO) -> None:
    """Print one line per RayService saying what happens, then its errors and warnings."""
    for item in checked:
        result = item.result
        if result.allowed:
            out.write(f"{item.label}: allowed, {result.change.kind.value}: {result.summary}\n")
        else:
            count = len(result.errors)
            out.write(f"{item.label}: denied, {count} error{'s' if count > 1 else ''}\n")
        for error in result.errors:
            out.write(f"  error: {error}\n")
        for warning in item.warnings:
            out.write(f"  warning: {warning}\n")
