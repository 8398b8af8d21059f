"""The ``ray start`` command of a head or worker Pod, built from rayStartParams as KubeRay does.

From ``ray-operator/controllers/ray/common/pod.go`` (``setMissingRayStartParams``,
``generateRayStartCommand``, ``convertParamMap``, ``updateRayStartParamsResources``,
``updateRayStartParamsLabels``, ``addWellKnownAcceleratorResources``):

- the group's ``resources`` map overrides ``num-cpus`` / ``memory`` / ``num-gpus`` and the rest
  becomes ``--resources='{"name": n}'``; the group's ``labels`` become ``--labels=k=v,...``;
- every node: ``metrics-export-port=8080`` and ``dashboard-agent-listen-port=52365`` unless set,
  and always ``block``; the head also ``dashboard-host=0.0.0.0`` (and ``no-monitor`` when the
  autoscaler sidecar runs); a worker ``address=<head Service FQDN>:<head port>``;
- the Ray container's resources fill what is unset: ``num-cpus`` from the CPU limit (else the
  request), ``memory`` from the memory limit, ``num-gpus`` from the first GPU limit, each rounded
  up to a whole number;
- flags are sorted; ``true`` becomes a bare ``--flag``, ``false`` drops it (except the few flags
  that take an explicit boolean), anything else is ``--flag=value``; each flag is written as
  `` --flag `` (spaces both sides), so the text matches KubeRay's byte for byte.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from reconciler.raycluster import quantity

__all__ = [
    "DASHBOARD_AGENT_PORT",
    "DEFAULT_DASHBOARD_PORT",
    "DEFAULT_GCS_PORT",
    "METRICS_PORT",
    "head_port",
    "ray_start_command",
    "start_params",
]

DEFAULT_GCS_PORT: Final = 6379
DEFAULT_DASHBOARD_PORT: Final = 8265
METRICS_PORT: Final = 8080
DASHBOARD_AGENT_PORT: Final = 52365
_EXPLICIT_BOOLEANS: Final = frozenset({"log-color", "include-dashboard", "include-log-monitor"})
_ACCELERATORS: Final = {"aws.amazon.com/neuroncore": "neuron_cores", "google.com/tpu": "TPU"}
_MIG: Final = re.compile(r"nvidia\.com/mig-\d+g\.\d+gb$")


def is_gpu_resource(name: str) -> bool:
    """A container resource KubeRay counts as GPUs (``utils.IsGPUResourceKey``)."""
    return name.endswith("gpu") or _MIG.search(name) is not None


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _go_number(value: float) -> str:
    """A float as Go's ``json.Marshal`` writes it: ``2``, ``0.5``, ``0.00001``."""
    if value == 0:
        return "0"
    if 1e-6 <= abs(value) < 1e21:
        text = format(Decimal(repr(value)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return repr(value)  # exponent form, as Go uses it outside that range


def _resources_json(resources: Mapping[str, float]) -> str:
    body = ",".join(f"{json.dumps(k)}:{_go_number(v)}" for k, v in sorted(resources.items()))
    return f"'{{{body}}}'"


def _parse_resources_param(text: str) -> dict[str, float] | None:
    try:
        loaded = json.loads(text.strip("'\"` "))
    except ValueError:
        return None
    if not isinstance(loaded, dict):
        return None
    out: dict[str, float] = {}
    for key, value in loaded.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[str(key)] = float(value)
    return out


def head_port(head_params: Mapping[str, Any]) -> str:
    """The GCS port workers join (``--port`` of the head, else 6379)."""
    value = head_params.get("port")
    return _text(value) if value is not None else str(DEFAULT_GCS_PORT)


def start_params(
    group: Mapping[str, Any],
    *,
    node_type: str,
    head_address: str = "",
    autoscaler: bool = False,
) -> dict[str, str]:
    """The group's rayStartParams completed as KubeRay completes them (before resources)."""
    raw = group.get("rayStartParams")
    params = {str(k): _text(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}
    group_resources = group.get("resources")
    if isinstance(group_resources, Mapping) and group_resources:
        custom: dict[str, float] = {}
        for name, text in group_resources.items():
            amount = quantity.parse(text)
            if amount is None:
                continue
            lowered = str(name).lower()
            if lowered == "cpu":
                params["num-cpus"] = str(amount.ceil())
            elif lowered == "memory":
                params["memory"] = str(amount.ceil())
            elif is_gpu_resource(lowered):
                params["num-gpus"] = str(amount.ceil())
            else:
                custom[str(name)] = float(amount.value)
        if custom:
            params["resources"] = _resources_json(custom)
    labels = group.get("labels")
    if isinstance(labels, Mapping) and labels:
        params["labels"] = ",".join(f"{k}={labels[k]}" for k in sorted(labels))
    if node_type == "worker":
        params.setdefault("address", head_address)
    else:
        params.setdefault("dashboard-host", "0.0.0.0")
        if autoscaler:
            params["no-monitor"] = "true"
    params.setdefault("metrics-export-port", str(METRICS_PORT))
    params["block"] = "true"
    params.setdefault("dashboard-agent-listen-port", str(DASHBOARD_AGENT_PORT))
    return params


def _fill_from_container(params: dict[str, str], resources: Mapping[str, Any]) -> None:
    limits = resources.get("limits")
    limits = limits if isinstance(limits, Mapping) else {}
    requests = resources.get("requests")
    requests = requests if isinstance(requests, Mapping) else {}
    if "num-cpus" not in params:
        for source in (limits, requests):
            cpu = quantity.parse(source.get("cpu"))
            if cpu is not None and cpu.value != 0:
                params["num-cpus"] = str(cpu.ceil())
                break
    if "memory" not in params:
        memory = quantity.parse(limits.get("memory"))
        if memory is not None and memory.value != 0:
            params["memory"] = str(memory.ceil())
    if not limits:
        return
    custom = _parse_resources_param(params["resources"]) if "resources" in params else {}
    if custom is None:
        return  # KubeRay gives up on accelerators when --resources is not JSON
    accelerator_seen = any(name in custom for name in _ACCELERATORS.values())
    for name in sorted(str(k) for k in limits):
        amount = quantity.parse(limits[name])
        if amount is None or amount.value == 0:
            continue
        if "num-gpus" not in params and is_gpu_resource(name):
            params["num-gpus"] = str(amount.ceil())
        ray_name = _ACCELERATORS.get(name)
        if not accelerator_seen and ray_name is not None:
            if ray_name not in custom:
                custom[ray_name] = float(amount.value)
                params["resources"] = _resources_json(custom)
            accelerator_seen = True


def _flags(params: Mapping[str, str]) -> str:
    out = []
    for name in sorted(params):
        value = params[name]
        if value.lower() in ("true", "false") and name not in _EXPLICIT_BOOLEANS:
            if value.lower() == "true":
                out.append(f" --{name} ")
        else:
            out.append(f" --{name}={value} ")
    return "".join(out)


def ray_start_command(
    params: Mapping[str, str], *, node_type: str, container_resources: Mapping[str, Any]
) -> str:
    """``ray start [--head] <flags>``, with the container's resources filled in."""
    complete = dict(params)
    _fill_from_container(complete, container_resources)
    head = " --head" if node_type == "head" else ""
    return f"ray start{head} {_flags(complete)}"
