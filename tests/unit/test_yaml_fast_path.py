"""The direct constructor over libyaml events gives exactly what the full loader gives."""

from __future__ import annotations

import json

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rayservice.yamldoc import NotJsonError, YamlError, _as_json, _Loader, load_json_data
from tests.builders import large_rayservice, sample

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Plain scalars whose YAML 1.1 reading is easy to get wrong, written as they are (unquoted).
TRICKY = [
    "yes", "no", "on", "off", "Yes", "NO", "y", "n", "Y", "true", "False", "TRUE", "~", "null",
    "Null", "NULL", "", "1e3", "1.0e+3", "1.5e-5", "0x1F", "0X1f", "0o17", "017", "08", "0b101",
    "1_000", "+12", "-0", "0", "00", "1:30", "1:30:45", "1:30.5", "-1:20", ".inf", "-.Inf",
    ".NaN", "1.", ".5", "+.5", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "12:60", "<<", "=",
    "9223372036854775807", "9223372036854775808", "18446744073709551615",
    "18446744073709551616", "-9223372036854775809", "1" + "0" * 80, "é", "a b", "-", "--",
    "a: b", "x#y",
]  # fmt: skip

plain = st.sampled_from(TRICKY) | st.from_regex(r"[A-Za-z_/.][A-Za-z0-9_./-]{0,8}", fullmatch=True)
quoted = st.text(max_size=6).map(json.dumps)
scalars = plain | quoted


def block(value: object, indent: int) -> list[str]:
    """YAML lines (block style) for a structure of already-written scalar texts."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return [pad + "{}"]
        lines = []
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}:")
                lines.extend(block(item, indent + 2))
            else:
                lines.append(f"{pad}{key}: {flat(item)}".rstrip())
        return lines
    if isinstance(value, list):
        if not value:
            return [pad + "[]"]
        lines = []
        for item in value:
            inner = block(item, indent + 2)
            lines.append(pad + "- " + inner[0].lstrip())
            lines.extend(inner[1:])
        return lines
    return [pad + str(value)]


def flat(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {flat(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(flat(v) for v in value) + "]"
    return str(value)


keys = st.sampled_from(["a", "b", "1", "true", "~", "1.5", "yes", '"a"', "name", "0x1F"])
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=15,
)

EXTRAS = [
    "a: &x [1, 2]\nb: *x\n",
    "a: &x [*x]\n",
    "base: &b {x: 1}\nd:\n  <<: *b\n  y: 2\n",
    "a: !!str 1\n",
    "a: !!binary aGk=\n",
    "a: !!set {x, y}\n",
    "a: !!omap [{x: 1}]\n",
    "a: !custom 1\n",
    "? [a, b]\n: c\n",
    "a: 1\n---\nb: 2\n",
    "--- \n...\n",
    "a: [1, 2\n",
    "a: b: c\n",
    "a: " + "[" * 256 + "]" * 256 + "\n",
    "a: " + "[" * 253 + "]" * 253 + "\n",
    "- " * 260 + "x\n",
    "a: 1\na: 2\n",
    "1: a\n'1': b\n",
    "a: |\n  text\n  more\nb: >-\n  folded\n",
]


def outcome(load: object) -> object:
    try:
        data, canonical = load()  # type: ignore[operator]
    except YamlError as exc:
        return ("yaml", str(exc))
    except NotJsonError as exc:
        return ("json", exc.path, exc.value, exc.detail, exc.reason)
    return ("data", json.dumps(data, ensure_ascii=False), canonical)  # key order too


def oracle(text: str) -> tuple[object, str]:
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        from rayservice.yamldoc import describe_yaml_error

        raise YamlError(describe_yaml_error(exc)) from exc
    return _as_json(data, text)


def agrees(text: str) -> None:
    assert outcome(lambda: load_json_data(text)) == outcome(lambda: oracle(text)), text


@SETTINGS
@given(documents, st.booleans())
def test_generated_block_yaml_loads_as_the_full_loader_loads_it(doc: object, flow: bool) -> None:
    agrees(flat(doc) + "\n" if flow else "\n".join(block(doc, 0)) + "\n")


@SETTINGS
@given(st.lists(st.sampled_from(EXTRAS) | st.sampled_from(TRICKY).map(lambda s: f"k: {s}\n")))
def test_unusual_yaml_is_left_to_the_full_loader_with_the_same_result(pieces: list[str]) -> None:
    agrees("".join(pieces))


def test_the_project_configs_take_the_fast_path_and_agree() -> None:
    for obj in (sample(), large_rayservice()):
        agrees(obj["spec"]["serveConfigV2"])
