"""What a Pod's spec means to the node, as pure functions: env, commands, probes, CPUs, grace.

Owns the kubelet's readings of a Pod that need no I/O: the container environment (``env``,
``envFrom``, ``valueFrom`` field, resource, ConfigMap and Secret references, ``$(VAR)``
expansion as ``k8s.io/kubernetes/third_party/forked/golang/expansion`` does), the command line
(``command`` and ``args`` expanded; an image's entrypoint does not exist here, so a container
without a command runs as a busybox-style image would), probes with their
defaults, named ports, and the CPUs a container is shown.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rayservice.quantity import parse_quantity

__all__ = [
    "ConfigError",
    "Probe",
    "command_line",
    "container_cpus",
    "container_env",
    "default_command_note",
    "env_names",
    "expand",
    "probe_of",
    "resolve_port",
]

Obj = Mapping[str, Any]


class ConfigError(ValueError):
    """The container cannot be configured (the kubelet's ``CreateContainerConfigError``)."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """Replace ``$(VAR)`` by its value when defined; ``$$`` is a literal ``$``."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$" or i + 1 >= len(text):
            out.append(char)
            i += 1
            continue
        following = text[i + 1]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "(":
            end = text.find(")", i + 2)
            if end == -1:
                out.append(text[i:])
                break
            name = text[i + 2 : end]
            out.append(env[name] if name in env else text[i : end + 1])
            i = end + 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


_LABEL_REF = re.compile(r"^metadata\.(labels|annotations)\['([^']*)'\]$")


def _field(pod: Obj, path: str, *, pod_ip: str, host_ip: str) -> str:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if path in simple:
        return str(simple[path])
    match = _LABEL_REF.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise ConfigError(f'unsupported fieldPath: "{path}"')


def _resource(container: Obj, ref: Obj, node_cpus: float, node_memory: float) -> str:
    resource = str(ref.get("resource", ""))
    kind, _, name = resource.partition(".")
    resources = container.get("resources") or {}
    value = parse_quantity((resources.get(kind) or {}).get(name))
    if value is None and kind == "limits":
        value = {"cpu": node_cpus, "memory": node_memory}.get(name)
    if value is None and kind == "requests":
        value = parse_quantity((resources.get("limits") or {}).get(name)) or 0.0
    if value is None:
        raise ConfigError(f'unsupported resource: "{resource}"')
    divisor = parse_quantity(ref.get("divisor") or "1") or 1.0
    return str(math.ceil(value / divisor - 1e-9))


def container_env(
    pod: Obj,
    container: Obj,
    *,
    base: Mapping[str, str],
    pod_ip: str,
    host_ip: str,
    config_maps: Mapping[str, Mapping[str, str] | None],
    secrets: Mapping[str, Mapping[str, str] | None],
    node_cpus: float,
    node_memory: float,
) -> dict[str, str]:
    """The environment a container's processes get: ``base``, then ``envFrom``, then ``env``.

    ``config_maps``/``secrets`` map names to their (decoded) data, ``None`` when missing.
    Raises :class:`ConfigError` for a missing non-optional reference.
    """
    env = dict(base)
    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix", ""))
        for kind, table in (("configMapRef", config_maps), ("secretRef", secrets)):
            ref = source.get(kind)
            if not ref:
                continue
            data = table.get(str(ref.get("name", "")))
            if data is None:
                if ref.get("optional"):
                    continue
                what = "configmap" if kind == "configMapRef" else "secret"
                raise ConfigError(f'{what} "{ref.get("name")}" not found')
            for key, value in data.items():
                env[prefix + key] = value
    for var in container.get("env") or []:
        name = str(var.get("name", ""))
        if "value" in var or "valueFrom" not in var:
            env[name] = expand(str(var.get("value", "")), env)
            continue
        source = var["valueFrom"] or {}
        if "fieldRef" in source:
            path = str((source["fieldRef"] or {}).get("fieldPath", ""))
            env[name] = _field(pod, path, pod_ip=pod_ip, host_ip=host_ip)
        elif "resourceFieldRef" in source:
            env[name] = _resource(container, source["resourceFieldRef"], node_cpus, node_memory)
        else:
            for kind, table, what in (
                ("configMapKeyRef", config_maps, "configmap"),
                ("secretKeyRef", secrets, "secret"),
            ):
                ref = source.get(kind)
                if not ref:
                    continue
                data = table.get(str(ref.get("name", "")))
                key = str(ref.get("key", ""))
                if data is None or key not in data:
                    if ref.get("optional"):
                        break
                    missing = f'{what} "{ref.get("name")}"'
                    raise ConfigError(
                        f"couldn't find key {key} in {missing}"
                        if data is not None
                        else f"{missing} not found"
                    )
                env[name] = data[key]
                break
    return env


DEFAULT_SHELL = "/bin/sh"


def command_line(container: Obj, env: Mapping[str, str]) -> list[str]:
    """``command`` + ``args`` with ``$(VAR)`` expanded.

    No image is pulled, so an image's entrypoint and default command do not exist here; a
    container without ``command`` is read as a busybox-style image would run it (no entrypoint,
    ``sh`` as the default command): its ``args`` are the command line, or :data:`DEFAULT_SHELL`
    when it has none either.
    """
    argv = [expand(str(a), env) for a in container.get("command") or []]
    argv += [expand(str(a), env) for a in container.get("args") or []]
    return argv or [DEFAULT_SHELL]


def default_command_note(container: Obj) -> str:
    """What the node tells (in an Event) about a container it runs without a ``command``;
    empty when the container sets one."""
    if container.get("command"):
        return ""
    image = str(container.get("image", ""))
    name = str(container.get("name", ""))
    if container.get("args"):
        return (
            f"container {name} has no command and image {image} is not pulled in local mode: "
            "its args run as the command line (as in a busybox-style image, which has no "
            "entrypoint), with the node's tools on PATH"
        )
    return (
        f"container {name} has no command and image {image} is not pulled in local mode: it "
        f"runs {DEFAULT_SHELL} (a busybox-style image's default command), with the node's "
        "tools on PATH"
    )


def container_cpus(container: Obj) -> int | None:
    """The CPUs the container is shown: its CPU limit, else its request, rounded up.

    Ray truncates a fractional CPU count to an integer, so 500m is shown as 1 (what KubeRay's
    ``--num-cpus`` from a quantity gives as well). ``None`` when neither is set.
    """
    resources = container.get("resources") or {}
    for kind in ("limits", "requests"):
        value = parse_quantity((resources.get(kind) or {}).get("cpu"))
        if value:
            return max(1, math.ceil(value - 1e-9))
    return None


def resolve_port(pod: Obj, port: Any) -> int:
    """A probe's port: a number, or the name of a container port of the Pod."""
    if isinstance(port, int):
        return port
    text = str(port)
    if text.isdigit():
        return int(text)
    for container in (pod.get("spec") or {}).get("containers") or []:
        for declared in container.get("ports") or []:
            if declared.get("name") == text:
                return int(declared.get("containerPort", 0))
    raise ConfigError(f'port "{text}" is not a named container port')


@dataclass(frozen=True)
class Probe:
    """One probe with the API server's defaults filled in."""

    kind: str  # "httpGet" | "tcpSocket" | "exec"
    command: tuple[str, ...] = ()
    host: str = ""
    port: Any = 0
    path: str = "/"
    scheme: str = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3


def probe_of(spec: Obj | None) -> Probe | None:
    """Read a ``Probe``; ``None`` when absent or of a kind not run here (gRPC)."""
    if not spec:
        return None
    kind = next((k for k in ("exec", "httpGet", "tcpSocket") if k in spec), None)
    if kind is None:
        return None
    action = spec[kind] or {}
    return Probe(
        kind,
        command=tuple(str(c) for c in action.get("command") or []),
        host=str(action.get("host", "")),
        port=action.get("port", 0),
        path=str(action.get("path") or "/"),
        scheme=str(action.get("scheme") or "HTTP"),
        headers=tuple(
            (str(h.get("name", "")), str(h.get("value", "")))
            for h in action.get("httpHeaders") or []
        ),
        initial_delay=float(spec.get("initialDelaySeconds") or 0),
        period=float(spec.get("periodSeconds") or 10),
        timeout=float(spec.get("timeoutSeconds") or 1),
        success_threshold=int(spec.get("successThreshold") or 1),
        failure_threshold=int(spec.get("failureThreshold") or 3),
    )


def env_names(containers: Sequence[Obj]) -> tuple[set[str], set[str]]:
    """The ConfigMaps and Secrets the containers' environments name."""
    config_maps: set[str] = set()
    secrets: set[str] = set()
    for container in containers:
        for source in container.get("envFrom") or []:
            if source.get("configMapRef"):
                config_maps.add(str(source["configMapRef"].get("name", "")))
            if source.get("secretRef"):
                secrets.add(str(source["secretRef"].get("name", "")))
        for var in container.get("env") or []:
            value_from = var.get("valueFrom") or {}
            if value_from.get("configMapKeyRef"):
                config_maps.add(str(value_from["configMapKeyRef"].get("name", "")))
            if value_from.get("secretKeyRef"):
                secrets.add(str(value_from["secretKeyRef"].get("name", "")))
    return config_maps, secrets
