"""serveConfigV2 parsing: bounded, KubeRay's YAML semantics, Ray's schema, never a crash."""

from __future__ import annotations

import json

import pytest

from rayservice.serveconfig import MAX_BYTES, parse_serve_config
from rayservice.yamldoc import MAX_NODES
from tests.builders import sample

SAMPLE_TEXT: str = sample()["spec"]["serveConfigV2"]


def billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        prev, this = chr(ord("a") + level - 1), chr(ord("a") + level)
        lines.append(f"{this}: &{this} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\napplications: []\n"


@pytest.mark.timeout(10)
def test_a_billion_laughs_document_is_refused() -> None:
    result = parse_serve_config(billion_laughs())
    assert [str(e) for e in result.errors] == [
        f"spec.serveConfigV2: Invalid value: YAML aliases expand to more than {MAX_NODES} nodes"
    ]
    assert result.hash is None


def test_a_few_harmless_aliases_are_fine() -> None:
    text = (
        "common: &opts {num_cpus: 0.1}\n"
        "applications:\n"
        "  - name: a\n    import_path: m.app\n"
        "    deployments: [{name: D, ray_actor_options: *opts}]\n"
    )
    result = parse_serve_config(text)
    assert result.errors == ()
    assert result.config is not None
    deployment = result.config.applications[0].deployments[0]
    assert deployment.ray_actor_options is not None
    assert deployment.ray_actor_options.num_cpus == 0.1


def test_an_oversized_document_is_refused_without_parsing() -> None:
    result = parse_serve_config("#" * (MAX_BYTES + 1))
    assert [str(e) for e in result.errors] == [
        f"spec.serveConfigV2: Too long: may not be more than {MAX_BYTES} bytes"
    ]


@pytest.mark.timeout(10)
def test_deep_nesting_is_refused_by_libyaml() -> None:
    result = parse_serve_config("applications: " + "[" * 5000 + "]" * 5000)
    assert result.errors[0].field == "spec.serveConfigV2"
    assert "invalid YAML" in str(result.errors[0])


def with_mango_user_config(extra_line: str) -> str:
    """The sample's Serve config with one more raw YAML line in MangoStand's user_config."""
    line = next(line for line in SAMPLE_TEXT.splitlines() if line.strip() == "price: 3")
    indent = line[: len(line) - len(line.lstrip())]
    return SAMPLE_TEXT.replace(line, f"{line}\n{indent}{extra_line}", 1)


def test_timestamps_stay_strings_like_in_kuberay() -> None:
    text = with_mango_user_config("since: 2024-01-02")
    result = parse_serve_config(text)
    assert result.errors == ()
    assert result.canonical is not None
    assert '"since":"2024-01-02"' in result.canonical


def test_yaml_1_1_booleans_are_booleans_like_in_go_yaml_v2() -> None:
    text = with_mango_user_config("fresh: yes")
    assert '"fresh":true' in (parse_serve_config(text).canonical or "")


def test_non_string_keys_become_strings() -> None:
    text = with_mango_user_config("{1: one, 2.5: x, null: n, false: f}".join(["extra: ", ""]))
    result = parse_serve_config(text)
    assert result.errors == ()
    document = json.loads(result.canonical or "null")
    user_config = document["applications"][0]["deployments"][0]["user_config"]
    assert user_config == {
        "price": 3,
        "extra": {"1": "one", "2.5": "x", "null": "n", "false": "f"},
    }


def test_binary_values_are_refused_with_their_path() -> None:
    text = "applications: []\nblob: !!binary aGVsbG8=\n"
    assert [str(e) for e in parse_serve_config(text).errors] == [
        'spec.serveConfigV2.blob: Invalid value: "bytes": YAML type not representable in JSON'
    ]


def test_an_empty_config_has_the_hash_of_null() -> None:
    empty, comments = parse_serve_config(""), parse_serve_config("# nothing here\n")
    assert empty.empty
    assert comments.empty
    assert empty.hash == comments.hash == parse_serve_config(None).hash
    assert empty.errors == ()


def test_parsing_is_memoized_by_text() -> None:
    assert parse_serve_config(SAMPLE_TEXT) is parse_serve_config(SAMPLE_TEXT)


def test_the_sample_parses_into_the_typed_model() -> None:
    result = parse_serve_config(SAMPLE_TEXT)
    assert result.config is not None
    fruit, math = result.config.applications
    assert (fruit.name, fruit.route_prefix, fruit.import_path) == (
        "fruit_app",
        "/fruit",
        "fruit.deployment_graph",
    )
    assert [d.name for d in math.deployments] == ["Adder", "Multiplier", "Router"]
    assert fruit.deployments[0].user_config == {"price": 3}


def test_one_bad_application_does_not_hide_the_others_errors() -> None:
    text = (
        "applications:\n"
        "  - {name: a, import_path: m.app, deployments: [{name: D, num_replicas: -1}]}\n"
        "  - {name: b, import_path: nodot, route_prefix: nope}\n"
    )
    fields = [e.field for e in parse_serve_config(text).errors]
    assert fields == [
        "spec.serveConfigV2.applications[0].deployments[0].num_replicas",
        "spec.serveConfigV2.applications[1].route_prefix",
        "spec.serveConfigV2.applications[1].import_path",
    ]


def test_two_apps_without_route_prefix_collide_on_the_default() -> None:
    text = "applications:\n  - {name: a, import_path: m.a}\n  - {name: b, import_path: m.b}\n"
    assert [str(e) for e in parse_serve_config(text).errors] == [
        'spec.serveConfigV2.applications[1].route_prefix: Duplicate value: "/": already used by '
        "applications[0] (the default when route_prefix is unset)"
    ]


def test_a_null_route_prefix_means_no_route_and_no_collision() -> None:
    text = (
        "applications:\n  - {name: a, import_path: m.a, route_prefix: null}\n"
        "  - {name: b, import_path: m.b, route_prefix: null}\n"
    )
    assert parse_serve_config(text).errors == ()


@pytest.mark.parametrize(
    "uri",
    [
        "https://github.com/ray-project/test_dag/archive/78b4a5d.zip",
        "s3://bucket/apps.tar.gz",
        "gs://bucket/apps.tgz",
        "file:///tmp/apps.tar.xz",
        "local:///opt/apps",
    ],
)
def test_supported_working_dirs_are_accepted(uri: str) -> None:
    text = f"applications:\n  - name: a\n    import_path: m.a\n    runtime_env: {{working_dir: '{uri}'}}\n"
    assert parse_serve_config(text).errors == ()


def test_unknown_top_level_keys_are_warnings() -> None:
    result = parse_serve_config("applications: []\nhttpOptions: {port: 8000}\n")
    assert result.errors == ()
    assert [str(w) for w in result.warnings] == [
        "spec.serveConfigV2.applications: no applications: the RayService never becomes ready",
        "spec.serveConfigV2.httpOptions: unknown key, ignored by Ray (did you mean http_options?)",
    ]
