"""``raysvc check`` as a user runs it: files in, verdicts and exit codes out."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml

from rayservice import ChangeClass
from raysvc.cli import build_parser, main
from tests.builders import SAMPLE_PATH, Obj, put, sample, worker
from tests.seed_cases import SEED_CASES


def write(path: Path, *docs: Obj) -> str:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return str(path)


def check_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]]]:
    code = main(["check", *argv, "--output", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_the_sample_is_allowed(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", str(SAMPLE_PATH)])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("rayservice-sample: allowed, create: a new RayCluster is created")


@pytest.mark.parametrize(
    ("edit", "expected"), [case[1:] for case in SEED_CASES], ids=[case[0] for case in SEED_CASES]
)
def test_every_seed_case_holds_through_check_old(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    edit: Callable[[Obj], object],
    expected: ChangeClass,
) -> None:
    new = sample()
    edit(new)
    code = main(
        [
            "check",
            write(tmp_path / "new.yaml", new),
            "--old",
            write(tmp_path / "old.yaml", sample()),
        ]
    )
    assert code == 0
    assert capsys.readouterr().out.startswith(f"rayservice-sample: allowed, {expected.value}: ")


def test_json_output_is_one_object_per_rayservice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    second = put(sample(), "metadata.name", "other")
    code, results = check_json(capsys, write(tmp_path / "new.yaml", sample(), second))
    assert code == 0
    assert [r["name"] for r in results] == ["rayservice-sample", "other"]
    first = results[0]
    assert set(first) >= {"name", "allowed", "errors", "warnings", "change", "hashes", "patch"}
    assert first["allowed"] is True
    assert first["change"] == "create"
    assert set(first["hashes"]) == {"cluster", "serve"}
    patched = jsonpatch.apply_patch(sample(), first["patch"])
    assert patched["spec"]["rayClusterDeletionDelaySeconds"] == 60
    assert patched["metadata"]["annotations"]["raysvc.io/change"] == "create"


def test_a_denied_document_exits_1_with_field_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = sample()
    worker(bad)["minReplicas"] = 6
    code, results = check_json(capsys, write(tmp_path / "new.yaml", sample(), bad))
    assert code == 1
    assert [r["allowed"] for r in results] == [True, False]
    assert results[1]["errors"] == [
        {
            "field": "spec.rayClusterConfig.workerGroupSpecs[0].minReplicas",
            "message": "Invalid value: 6: must be less than or equal to maxReplicas (5)",
        }
    ]


def test_text_output_lists_errors_and_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = sample()
    worker(bad)["minReplicas"] = 6
    code = main(["check", write(tmp_path / "bad.yaml", bad)])
    assert code == 1
    assert capsys.readouterr().out.splitlines() == [
        "rayservice-sample: denied, 1 error",
        "  error: spec.rayClusterConfig.workerGroupSpecs[0].minReplicas: Invalid value: 6: "
        "must be less than or equal to maxReplicas (5)",
    ]


def test_other_kinds_are_skipped_and_lists_are_expanded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    listed = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [put(sample(), "metadata.name", "in-list")],
    }
    code, results = check_json(capsys, write(tmp_path / "mixed.yaml", configmap, sample(), listed))
    assert code == 0
    assert [r["name"] for r in results] == ["rayservice-sample", "in-list"]


def test_old_documents_pair_by_namespace_and_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other_ns = put(sample(), "metadata.namespace", "prod")
    new = put(sample(), "spec.rayClusterConfig.rayVersion", "2.53.0")
    code, results = check_json(
        capsys, write(tmp_path / "new.yaml", new), "--old", write(tmp_path / "old.yaml", other_ns)
    )
    assert code == 0
    assert results[0]["change"] == "create"


def test_v1alpha1_documents_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, results = check_json(
        capsys, write(tmp_path / "old-api.yaml", put(sample(), "apiVersion", "ray.io/v1alpha1"))
    )
    assert code == 0
    assert results[0]["apiVersion"] == "ray.io/v1alpha1"
    assert results[0]["warnings"][0]["field"] == "apiVersion"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "raysvc check: cannot read {path}: No such file or directory"),
        ("a: [", "raysvc check: {path}: invalid YAML: line 2, column 1: "),
        ("kind: ConfigMap\n", "raysvc check: {path}: no RayService document found"),
        (
            "apiVersion: ray.io/v2\nkind: RayService\n",
            "raysvc check: {path}: document 1: RayService apiVersion 'ray.io/v2' is not supported",
        ),
        (b"\xff\xfe", "raysvc check: {path}: not UTF-8 text"),
        (
            "kind: RayService\napiVersion: ray.io/v1\nspec: {a: [1, .nan]}\n",
            'raysvc check: {path}: document 1: spec.a[1]: Invalid value: "nan": must be a '
            "finite number",
        ),
        (
            "1" + "0" * 5000 + "\n",
            'raysvc check: {path}: document 1: Invalid value: "' + "1" + "0" * 75 + "...: must "
            "be an integer between -9223372036854775808 and 18446744073709551615",
        ),
        (
            "---\nkind: ConfigMap\n---\na: &x [*x]\n",
            "raysvc check: {path}: document 2: a[0]: Forbidden: a YAML alias may not refer to a "
            "node that contains it",
        ),
        (
            "kind: RayService\nmetadata: {name: x}\n",
            "raysvc check: {path}: document 1: RayService has no apiVersion (ray.io/v1 or "
            "ray.io/v1alpha1)",
        ),
    ],
    ids=[
        "missing",
        "not-yaml",
        "no-rayservice",
        "bad-version",
        "binary",
        "nan",
        "big-integer",
        "recursive-alias",
        "no-api-version",
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | bytes | None, message: str
) -> None:
    path = tmp_path / "input.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    code = main(["check", str(path)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err.startswith(message.format(path=path))
    assert captured.err.count("\n") == 1


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 2
    assert main(["check", str(SAMPLE_PATH), "--output", "xml"]) == 2
    assert "usage: raysvc check" in capsys.readouterr().err


def test_the_console_script_reads_stdin() -> None:
    text = SAMPLE_PATH.read_text()
    done = subprocess.run(
        [str(Path(sys.executable).with_name("raysvc")), "check", "-", "--output", "json"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["allowed"] is True


def test_a_yaml_bomb_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 9):
        prev, this = chr(ord("a") + level - 1), chr(ord("a") + level)
        lines.append(f"{this}: &{this} [" + ",".join([f"*{prev}"] * 9) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert main(["check", str(path)]) == 2
    assert "YAML aliases expand to more than" in capsys.readouterr().err


def test_a_huge_quantity_exponent_is_denied_without_hanging(tmp_path: Path) -> None:
    bad = sample()
    worker(bad)["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "1e999999999"
    done = subprocess.run(
        [str(Path(sys.executable).with_name("raysvc")), "check", write(tmp_path / "q.yaml", bad)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 1, done.stderr
    assert (
        'resources.requests[cpu]: Invalid value: "1e999999999": must be no more than '
        "9223372036854775807 in magnitude" in done.stdout
    )


def test_a_quantity_out_of_range_is_a_denial_in_the_json_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = sample()
    worker(bad)["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = "1e400"
    code, results = check_json(capsys, write(tmp_path / "q.yaml", bad))
    assert code == 1
    assert results[0]["errors"][0]["message"] == (
        'Invalid value: "1e400": must be no more than 9223372036854775807 in magnitude'
    )


def test_stdin_cannot_be_both_sides(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-", "--old", "-"]) == 2
    assert capsys.readouterr().err == (
        "raysvc check: NEW.yaml and --old cannot both be stdin ('-')\n"
    )


def test_the_same_rayservice_twice_in_a_file_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = put(sample(), "metadata.name", "other")
    code, results = check_json(capsys, write(tmp_path / "twice.yaml", sample(), other, sample()))
    assert code == 0
    assert [r["document"] for r in results] == [1, 2, 3]
    assert results[0]["warnings"][0] == {
        "field": "",
        "message": "default/rayservice-sample is also in document 3: applying the file keeps "
        "only the last",
    }
    assert results[1]["warnings"] == []


def test_a_nameless_rayservice_is_named_by_its_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nameless = sample()
    del nameless["metadata"]["name"]
    code = main(["check", write(tmp_path / "nameless.yaml", sample(), nameless)])
    assert code == 1
    lines = capsys.readouterr().out.splitlines()
    assert "document 2 (no name): denied, 1 error" in lines


def test_version_and_every_flag_has_help_with_its_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("raysvc 0.")
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in ("check", "webhook"):
        for action in commands.choices[name]._actions:
            if not action.option_strings or action.dest == "help":
                continue
            assert action.help, f"{name} {action.option_strings[0]} has no help"
            shown = "default" in action.help or "required" in action.help
            assert shown, f"{name} {action.option_strings[0]}: no default"
