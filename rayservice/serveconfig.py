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
  prefixes, working_dir URIs), application by application (``rayservice.serveapps``). Unknown
  keys are warnings, not errors: Ray ignores them.

The result is immutable and keyed by the text alone, so it is memoized (``parse_serve_config``):
the webhook parses each distinct serveConfigV2 once, although both the mutating and the
validating admission and the next UPDATE's ``oldObject`` carry it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import orjson

from rayservice.errors import FieldError, FieldWarning, Path, Reason
from rayservice.hashing import digest
from rayservice.memo import TextMemo
from rayservice.serveapps import WORKING_DIR_EXTENSIONS, check_config
from rayservice.servemodels import ApplicationConfig, DeploymentConfig, ServeConfig
from rayservice.servesplit import load_by_application
from rayservice.yamldoc import NotJsonError, YamlError, load_json_data

__all__ = [
    "MAX_BYTES",
    "SERVE_CONFIG_PATH",
    "WORKING_DIR_EXTENSIONS",
    "ApplicationConfig",
    "DeploymentConfig",
    "ParsedServeConfig",
    "ServeConfig",
    "parse_serve_config",
]

SERVE_CONFIG_PATH: Final[Path] = ("spec", "serveConfigV2")
MAX_BYTES: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ParsedServeConfig:
    """What one serveConfigV2 text means.

    ``canonical`` is the document as canonical JSON (the body to submit to Ray, and what
    ``hash`` hashes); both are ``None`` only when the text is not a valid YAML mapping.
    An absent or empty serveConfigV2 has ``config=None`` and the hash of ``null``.
    ``config`` is ``None`` unless the document has Serve's shape.

    Results are memoized, so they hold text and findings only: the typed ``config`` is built
    when it is asked for (a tree of models per application would be kept for nothing, and cost
    the garbage collector on every pass).
    """

    canonical: str | None
    hash: str | None
    errors: tuple[FieldError, ...]
    warnings: tuple[FieldWarning, ...]
    shaped: bool = False
    """True when the document has Serve's shape (no error): ``config`` is not ``None``."""

    @property
    def config(self) -> ServeConfig | None:
        """The typed config (built on each access; treat it as read-only)."""
        if not self.shaped or self.canonical is None:
            return None
        return ServeConfig.model_validate(orjson.loads(self.canonical))

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
    split = load_by_application(text)
    if split is not None:
        errors, warnings, shaped = check_config(split.top, base, applications=split.applications)
        canonical = split.canonical
        return ParsedServeConfig(
            canonical, digest(canonical), tuple(errors), tuple(warnings), shaped
        )
    try:
        data, canonical = load_json_data(text)
    except YamlError as exc:
        return _failed(FieldError(base, Reason.INVALID, detail=str(exc)))
    except NotJsonError as exc:
        return _failed(FieldError((*base, *exc.path), exc.reason, exc.value, exc.detail))
    if data is None:
        return ParsedServeConfig(canonical, digest(canonical), (), ())
    if not isinstance(data, dict):
        return _failed(
            FieldError(
                base, Reason.INVALID, detail="must be a YAML mapping with an applications list"
            )
        )
    errors, warnings, shaped = check_config(data, base)
    return ParsedServeConfig(canonical, digest(canonical), tuple(errors), tuple(warnings), shaped)


def _failed(error: FieldError) -> ParsedServeConfig:
    return ParsedServeConfig(None, None, (error,), ())
