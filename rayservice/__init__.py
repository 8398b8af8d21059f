"""The RayService domain, pure: no I/O, no asyncio, no clock, no environment.

Models, serveConfigV2 parsing, defaults, validation rules, change classification, hashes and the
annotation contract. The webhook, the reconciler and ``raysvc check`` all decide through here.
"""

from rayservice.classify import Aspect, Change, Hashes, classify_change, compute_hashes
from rayservice.contract import ChangeClass
from rayservice.defaults import DEFAULT_RULES, PatchOp, apply_defaults, apply_ops, default_ops
from rayservice.errors import (
    FieldError,
    FieldWarning,
    NotARayServiceError,
    RayServiceError,
    Reason,
)
from rayservice.evaluate import Evaluation, evaluate, parse_rayservice, require_rayservice
from rayservice.serveconfig import ParsedServeConfig, parse_serve_config

__all__ = [
    "DEFAULT_RULES",
    "Aspect",
    "Change",
    "ChangeClass",
    "Evaluation",
    "FieldError",
    "FieldWarning",
    "Hashes",
    "NotARayServiceError",
    "ParsedServeConfig",
    "PatchOp",
    "RayServiceError",
    "Reason",
    "apply_defaults",
    "apply_ops",
    "classify_change",
    "compute_hashes",
    "default_ops",
    "evaluate",
    "parse_rayservice",
    "parse_serve_config",
    "require_rayservice",
]
