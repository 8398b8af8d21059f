"""Loading serveConfigV2 application by application gives what loading it whole gives."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rayservice.servesplit import load_by_application
from rayservice.yamldoc import NotJsonError, YamlError, load_json_data
from tests.builders import large_rayservice, sample
from tests.unit.test_yaml_fast_path import TRICKY, block, flat

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

words = st.sampled_from([*TRICKY, "app", "/a", "m.app", "- x", "#", "a #b", "'q'", '"d"', "|"])
scalar_texts = words | st.text(max_size=5).map(json.dumps)
values = st.recursive(
    scalar_texts,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["name", "x", "args", "y"]), inner, max_size=3)
    ),
    max_leaves=10,
)
applications = st.lists(
    st.fixed_dictionaries(
        {"name": scalar_texts, "import_path": scalar_texts},
        optional={"args": values, "deployments": st.lists(values, max_size=2)},
    ),
    min_size=1,
    max_size=4,
)
BLOCK_SCALARS = ["notes: |\n  - looks like an item\n  applications:\n", "notes: >-\n  folded\n"]
COMMENTS = ["", "# a comment\n", "\n", "  # indented comment\n", "#- not an item\n"]


@st.composite
def configs(draw: st.DrawFn) -> str:
    indent = draw(st.sampled_from([0, 2, 4]))
    pad = " " * indent
    lines = ["applications:"]
    for app in draw(applications):
        item = block(app, indent + 2)
        lines.append(pad + "- " + item[0].lstrip())
        lines.extend(item[1:])
        lines.append(draw(st.sampled_from(COMMENTS)).rstrip("\n"))
    before = draw(st.lists(st.sampled_from([*BLOCK_SCALARS, "proxy_location: EveryNode\n"])))
    after = draw(
        st.lists(
            st.sampled_from(
                [
                    "http_options:\n  port: 8000\n",
                    "target_capacity: 50\n",
                    "logging_config: {encoding: JSON}\n",
                    "x: [a, b]\n",
                    "applications: []\n",
                    " stray: 1\n",
                ]
            )
        )
    )
    return "".join(before) + "\n".join(lines) + "\n" + "".join(after)


def whole(text: str) -> object:
    try:
        data, canonical = load_json_data(text)
    except (YamlError, NotJsonError):
        return "error"
    return json.dumps(data, ensure_ascii=False), canonical


@SETTINGS
@given(configs())
def test_a_config_loaded_by_application_equals_the_config_loaded_whole(text: str) -> None:
    split = load_by_application(text)
    if split is not None:
        assert (json.dumps(split.data, ensure_ascii=False), split.canonical) == whole(text), text


@SETTINGS
@given(applications)
def test_plain_configs_are_loaded_by_application(apps: list[dict[str, object]]) -> None:
    lines = ["applications:"]
    for app in apps:
        item = block({key: flat(value) for key, value in app.items()}, 2)
        lines.append("- " + item[0].lstrip())
        lines.extend(item[1:])
    text = "\n".join(lines) + "\n"
    if whole(text) != "error" and '"' not in text and "'" not in text:
        assert load_by_application(text) is not None, text


def test_the_project_configs_are_loaded_by_application() -> None:
    for obj in (sample(), large_rayservice()):
        text = obj["spec"]["serveConfigV2"]
        split = load_by_application(text)
        assert split is not None
        assert (json.dumps(split.data), split.canonical) == whole(text)
