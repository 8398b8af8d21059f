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
from pathlib import Path
from typing import Any, TextIO

from rayservice import Evaluation, evaluate
from rayservice.yamldoc import NotJsonError, YamlError, load_json_documents
from raysvc.cli import EXIT_DENIED, EXIT_OK, EXIT_USAGE

__all__ = ["InputError", "load_rayservices", "register", "render_json", "render_text", "run"]

MAX_INPUT_BYTES = 8 * 1024 * 1024


class InputError(Exception):
    """Input that cannot be checked: unreadable, not YAML, no RayService. Exit code 2."""


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
        help="the current version to classify the change from (without it: create)",
    )
    parser.add_argument("--output", choices=("text", "json"), default="text", help="output format")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Check ``args.new`` (against ``args.old``) and print the verdicts."""
    try:
        new = load_rayservices(args.new, required=True)
        old = {_key(obj): obj for obj in load_rayservices(args.old)} if args.old else {}
    except InputError as exc:
        print(f"raysvc check: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # load_rayservices keeps RayService documents only, so evaluate cannot refuse one.
    results = [evaluate(obj, old.get(_key(obj))) for obj in new]
    if args.output == "json":
        render_json(results, sys.stdout)
    else:
        render_text(results, sys.stdout)
    return EXIT_OK if all(result.allowed for result in results) else EXIT_DENIED


def load_rayservices(source: str | None, *, required: bool = False) -> list[Mapping[str, Any]]:
    """Every RayService document of a YAML file (``kind: List`` items included).

    Other kinds are skipped; a RayService of an unsupported apiVersion, unreadable input, bad
    YAML, or (when ``required``) no RayService at all raise ``InputError``.
    """
    if source is None:
        return []
    label = "stdin" if source == "-" else source
    text = _read(source, label)
    found: list[Mapping[str, Any]] = []
    try:
        for index, doc in enumerate(_expand(load_json_documents(text)), start=1):
            if not isinstance(doc, Mapping) or doc.get("kind") != "RayService":
                continue
            api_version = doc.get("apiVersion")
            if api_version not in ("ray.io/v1", "ray.io/v1alpha1"):
                raise InputError(
                    f"{label}: document {index}: RayService apiVersion {api_version!r} is not "
                    "supported (ray.io/v1, ray.io/v1alpha1)"
                )
            found.append(doc)
    except YamlError as exc:
        raise InputError(f"{label}: {exc}") from exc
    except NotJsonError as exc:
        raise InputError(f"{label}: {exc.detail}") from exc
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


def _expand(docs: Iterator[object]) -> Iterator[object]:
    for doc in docs:
        if (
            isinstance(doc, Mapping)
            and doc.get("kind") == "List"
            and isinstance(doc.get("items"), list)
        ):
            yield from doc["items"]
        elif doc is not None:
            yield doc


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    return str(meta.get("namespace") or "default"), str(meta.get("name") or "")


def as_json(result: Evaluation) -> dict[str, Any]:
    """The public JSON form of one verdict (see the README)."""
    return {
        "name": result.name,
        "namespace": result.namespace,
        "apiVersion": result.api_version,
        "allowed": result.allowed,
        "errors": [{"field": e.field, "message": e.message} for e in result.errors],
        "warnings": [{"field": w.field, "message": w.message} for w in result.warnings],
        "change": result.change.kind.value,
        "summary": result.summary,
        "consequences": list(result.consequences),
        "hashes": {"cluster": result.hashes.cluster, "serve": result.hashes.serve},
        "patch": result.patch_json(),
    }


def render_json(results: Sequence[Evaluation], out: TextIO) -> None:
    """Print a JSON array, one object per RayService."""
    json.dump([as_json(result) for result in results], out, indent=2)
    out.write("\n")


def render_text(results: Sequence[Evaluation], out: TextIO) -> None:
    """Print one line per RayService saying what happens, then its errors and warnings."""
    for result in results:
        if result.allowed:
            out.write(f"{result.name}: allowed, {result.change.kind.value}: {result.summary}\n")
        else:
            count = len(result.errors)
            out.write(f"{result.name}: denied, {count} error{'s' if count > 1 else ''}\n")
        for error in result.errors:
            out.write(f"  error: {error}\n")
        for warning in result.warnings:
            out.write(f"  warning: {warning}\n")
