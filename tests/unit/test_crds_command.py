"""``raysvc crds`` as a user reads it: plain multi-document YAML, the CRDs whole."""

from __future__ import annotations

import re

import pytest
import yaml

from rayservice.crd import rayservice_crds
from raysvc.cli import main


def crds_output(capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["crds"]) == 0
    return capsys.readouterr().out


def test_the_printed_crds_have_no_anchors_or_aliases(capsys: pytest.CaptureFixture[str]) -> None:
    out = crds_output(capsys)
    # An anchor or alias is `&name` / `*name` where a YAML value starts; the CRDs' text has none.
    assert re.findall(r"(?:^|[\s:\-\[,])[&*][A-Za-z0-9_]+", out) == []


def test_the_printed_crds_are_every_crd_in_full(capsys: pytest.CaptureFixture[str]) -> None:
    docs = list(yaml.safe_load_all(crds_output(capsys)))
    assert docs == rayservice_crds()
    assert [d["spec"]["names"]["kind"] for d in docs] == ["RayService", "RayCluster"]


def test_shared_parts_are_written_out_at_each_use(capsys: pytest.CaptureFixture[str]) -> None:
    out = crds_output(capsys)
    # Both RayService versions share one printer-column list; quantities share one anyOf list.
    assert out.count("additionalPrinterColumns:\n    - name: Service Status") == 2
    assert out.count("anyOf:\n") == out.count("x-kubernetes-int-or-string: true")
