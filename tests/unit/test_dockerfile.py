"""The Dockerfile's structure (no Docker engine runs here): stages, pinned base, non-root user,
entrypoint, labels, nothing secret or superfluous in the image, and a ``.dockerignore`` that lets
through exactly the sources the build copies."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PINNED = re.compile(r"^[a-z0-9./-]+:[0-9][\w.-]*@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


@dataclass(frozen=True)
class Stage:
    base: str
    name: str
    instructions: tuple[Instruction, ...]

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    args: dict[str, str] = {}
    stages: list[tuple[str, str, list[Instruction]]] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            base, _, name = rest.partition(" AS ")
            stages.append((base.strip(), name.strip(), []))
        elif stages:
            stages[-1][2].append(Instruction(keyword, " ".join(rest.split())))
        elif keyword == "ARG":
            key, _, value = rest.partition("=")
            args[key] = value
    return args, [Stage(base, name, tuple(body)) for base, name, body in stages]


ARGS, STAGES = parse((ROOT / "Dockerfile").read_text())
FINAL = STAGES[-1]


def resolve(image: str) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: ARGS[m.group(1)], image)


def packages() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]


def test_the_image_is_built_in_named_stages_and_the_first_builds_a_wheel() -> None:
    assert [stage.name for stage in STAGES] == ["wheel", "venv", "runtime"]
    assert any("pip wheel --no-deps" in run for run in STAGES[0].all("RUN"))
    # Binary wheels only: nothing is compiled, so no stage needs a compiler.
    assert any("--only-binary=:all:" in run for run in STAGES[1].all("RUN"))
    for stage in STAGES:
        for run in stage.all("RUN"):
            assert not re.search(r"apt-get|apk add|gcc|build-essential", run), run


def test_every_stage_starts_from_the_same_base_pinned_by_tag_and_digest() -> None:
    bases = {resolve(stage.base) for stage in STAGES}
    assert len(bases) == 1
    (base,) = bases
    assert PINNED.match(base), base
    assert base.startswith("python:3.11.")


def test_the_runtime_runs_raysvc_as_a_numeric_non_root_user() -> None:
    (user,) = FINAL.all("USER")
    assert re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", user), user
    uid = user.partition(":")[0]
    # The chart's pod securityContext names the same user.
    values = yaml.safe_load((ROOT / "charts" / "raysvc" / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == int(uid)
    (entrypoint,) = FINAL.all("ENTRYPOINT")
    assert json.loads(entrypoint) == ["raysvc"]
    instructions = [i.keyword for i in FINAL.instructions]
    assert instructions.index("USER") > max(
        i for i, k in enumerate(instructions) if k in ("RUN", "COPY")
    )


def test_the_runtime_carries_oci_labels() -> None:
    labels = dict(
        re.findall(r'(org\.opencontainers\.image\.[\w.]+)="([^"]*)"', " ".join(FINAL.all("LABEL")))
    )
    assert labels["org.opencontainers.image.title"] == "raysvc"
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert labels["org.opencontainers.image.licenses"] == pyproject["project"]["license"]
    assert re.search(
        rf"ARG VERSION={re.escape(pyproject['project']['version'])}$",
        (ROOT / "Dockerfile").read_text(),
        re.M,
    )


def test_the_runtime_gets_only_the_virtual_environment_and_no_installer_or_cache() -> None:
    assert FINAL.all("COPY") == ["--from=venv /opt/raysvc/ /opt/raysvc/"]
    (run,) = FINAL.all("RUN")
    assert "pip uninstall --yes --no-cache-dir pip setuptools wheel" in run
    for stage in STAGES:
        env = " ".join(stage.all("ENV"))
        if any("pip " in r for r in stage.all("RUN")) and stage is not FINAL:
            assert "PIP_NO_CACHE_DIR=1" in env, stage.name
    assert "PYTHONUNBUFFERED=1" in " ".join(FINAL.all("ENV"))  # logs leave at once


def test_no_secret_is_baked_into_the_image() -> None:
    text = (ROOT / "Dockerfile").read_text()
    names = re.findall(r"^\s*(?:ARG|ENV)\s+(\w+)", text, re.M) + [
        key for stage in STAGES for env in stage.all("ENV") for key in re.findall(r"(\w+)=", env)
    ]
    assert not [
        n for n in names if re.search(r"PASSWORD|TOKEN|SECRET|CREDENTIAL|API_KEY|PRIVATE", n, re.I)
    ]
    for stage in STAGES:
        for copy in stage.all("COPY") + stage.all("ADD"):
            assert not re.search(r"\.env|id_rsa|\.pem|\.key|kubeconfig|\.netrc|\.pypirc", copy), (
                copy
            )
    assert "--mount=type=secret" not in text


def test_the_build_context_is_exactly_the_sources_the_build_copies() -> None:
    ignore = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    # Everything is excluded first; only named sources come back in.
    assert ignore[0] == "*"
    allowed = sorted(line[1:].rstrip("/") for line in ignore if line.startswith("!"))
    copied = sorted(
        source.rstrip("/") for copy in STAGES[0].all("COPY") for source in copy.split()[:-1]
    )
    assert allowed == copied
    assert set(packages()) <= set(copied), (
        "every package in pyproject.toml is copied into the build"
    )
