"""Running the real helm on ``charts/raysvc``, and reading what it rendered."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.commands import Result, run

__all__ = ["CHART", "Helm", "Manifests", "Result"]

CHART = Path(__file__).resolve().parents[3] / "charts" / "raysvc"
Obj = dict[str, Any]


class Helm:
    """The helm binary with private config, cache and data directories under ``home``."""

    def __init__(self, binary: Path, home: Path) -> None:
        self.binary = binary
        self.home = home
        self.env = {
            **os.environ,
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
            "HOME": str(home),
        }

    def run(
        self, *args: str, kubeconfig: Path | None = None, check: bool = True, timeout: float = 120
    ) -> Result:
        env = dict(self.env)
        if kubeconfig is not None:
            env["KUBECONFIG"] = str(kubeconfig)
        return run([str(self.binary), *args], env=env, check=check, timeout=timeout)

    def values_args(self, values: Obj | None) -> list[str]:
        """``--values FILE`` for ``values`` (none for ``None``)."""
        if values is None:
            return []
        path = self.home / f"values-{uuid.uuid4().hex[:8]}.yaml"
        path.write_text(yaml.safe_dump(values))
        return ["--values", str(path)]

    def lint(self, values: Obj | None = None) -> Result:
        return self.run("lint", "--strict", str(CHART), *self.values_args(values), check=False)

    def template(
        self,
        values: Obj | None = None,
        *,
        release: str = "raysvc",
        namespace: str = "raysvc-system",
        include_crds: bool = False,
        check: bool = True,
    ) -> tuple[Result, Manifests]:
        args = ["template", release, str(CHART), "--namespace", namespace]
        if include_crds:
            args.append("--include-crds")
        result = self.run(*args, *self.values_args(values), check=check)
        return result, Manifests.parse(result.out if result.code == 0 else "")

    def render(self, values: Obj | None = None, **kwargs: Any) -> Manifests:
        """The manifests ``helm template`` renders for ``values`` (it must succeed)."""
        return self.template(values, **kwargs)[1]


@dataclass(frozen=True)
class Manifests:
    """The objects of one rendering, in helm's order."""

    objects: tuple[Obj, ...]

    @classmethod
    def parse(cls, text: str) -> Manifests:
        return cls(tuple(doc for doc in yaml.safe_load_all(text) if doc))

    def kinds(self) -> list[tuple[str, str]]:
        return sorted((obj["kind"], obj["metadata"]["name"]) for obj in self.objects)

    def of_kind(self, kind: str) -> list[Obj]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def get(self, kind: str, name: str) -> Obj:
        (found,) = [obj for obj in self.of_kind(kind) if obj["metadata"]["name"] == name]
        return found

    def container(self, deployment: str) -> Obj:
        spec = self.get("Deployment", deployment)["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        assert isinstance(container, dict)
        return container
