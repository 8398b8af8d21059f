"""Kubernetes protobuf: the envelope, the wire format, and the JSON Go would print."""

from __future__ import annotations

import pytest

from localkube import protobuf
from localkube.protogen import parse_go, parse_proto


def _delimited(number: int, payload: bytes) -> bytes:
    assert len(payload) < 128
    return bytes([(number << 3) | 2, len(payload)]) + payload


def _configmap_wire() -> bytes:
    """A ConfigMap ``c`` with data ``a: b`` as client-go writes it, built by hand."""
    type_meta = _delimited(1, b"v1") + _delimited(2, b"ConfigMap")
    meta = _delimited(1, b"c") + _delimited(2, b"")  # name, then an empty generateName
    entry = _delimited(1, b"a") + _delimited(2, b"b")
    raw = _delimited(1, meta) + _delimited(2, entry)
    return protobuf.MAGIC + _delimited(1, type_meta) + _delimited(2, raw) + _delimited(3, b"")


def test_a_configmap_from_the_wire_reads_as_the_json_kubectl_would_send() -> None:
    assert protobuf.decode(_configmap_wire()) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"a": "b"},
    }


def test_zero_pointers_stay_and_empty_structs_and_null_times_appear_as_go_prints_them() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "creationTimestamp": "2024-01-02T03:04:05Z"},
        "spec": {
            "replicas": 0,
            "paused": False,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {
                    "containers": [{"name": "x", "image": "x", "ports": [{"containerPort": 80}]}]
                },
            },
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
        },
        "status": {},
    }
    encoded = protobuf.encode(deployment)
    assert encoded is not None
    assert encoded.startswith(b"k8s\x00")
    decoded = protobuf.decode(encoded)
    spec = decoded["spec"]
    assert spec["replicas"] == 0  # *int32: a set zero is kept
    assert "paused" not in spec  # bool,omitempty: a zero is left out
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": 1}
    assert decoded["metadata"]["creationTimestamp"] == "2024-01-02T03:04:05Z"
    assert decoded["status"] == {}  # a struct, never omitted by encoding/json
    template = spec["template"]
    assert template["metadata"] == {"labels": {"app": "d"}}
    assert template["spec"]["containers"][0]["ports"] == [{"containerPort": 80}]


def test_a_zero_time_reads_as_null() -> None:
    type_meta = _delimited(1, b"v1") + _delimited(2, b"ConfigMap")
    meta = _delimited(1, b"c") + _delimited(8, b"")  # creationTimestamp: the zero time
    body = protobuf.MAGIC + _delimited(1, type_meta) + _delimited(2, _delimited(1, meta))
    assert protobuf.decode(body)["metadata"] == {"name": "c", "creationTimestamp": None}


def test_secret_bytes_travel_as_base64_and_int_or_string_keeps_its_kind() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "data": {"k": "aGk="},
    }
    encoded = protobuf.encode(secret)
    assert encoded is not None
    assert b"hi" in encoded  # the raw bytes, not their base64
    assert protobuf.decode(encoded)["data"] == {"k": "aGk="}
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 8081}]},
    }
    encoded = protobuf.encode(service)
    assert encoded is not None
    ports = protobuf.decode(encoded)["spec"]["ports"]
    assert [p["targetPort"] for p in ports] == ["http", 8081]


def test_a_status_and_delete_options_have_their_meta_messages() -> None:
    status = {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "code": 404,
        "reason": "NotFound",
    }
    encoded = protobuf.encode(status)
    assert encoded is not None
    assert protobuf.decode(encoded)["code"] == 404
    options = {
        "apiVersion": "meta.k8s.io/v1",
        "kind": "DeleteOptions",
        "dryRun": ["All"],
        "preconditions": {"uid": "u"},
    }
    encoded = protobuf.encode(options)
    assert encoded is not None
    assert protobuf.decode(encoded)["preconditions"] == {"uid": "u"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{}", "the body does not start with the k8s protobuf prefix"),
        (protobuf.MAGIC + b"\x0a\x05ab", "length-delimited field runs past the end of the data"),
        (
            protobuf.MAGIC + b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
            "varint overflows 64 bits",
        ),
        (protobuf.MAGIC + b"\x0f", "unsupported wire type 7"),
    ],
)
def test_malformed_bodies_are_refused_with_a_reason(body: bytes, message: str) -> None:
    with pytest.raises(protobuf.ProtobufError, match=message):
        protobuf.decode(body)


def test_a_kind_without_a_message_is_refused() -> None:
    type_meta = _delimited(1, b"ray.io/v1") + _delimited(2, b"RayService")
    with pytest.raises(protobuf.ProtobufError, match="no protobuf message is known"):
        protobuf.decode(protobuf.MAGIC + _delimited(1, type_meta))
    assert protobuf.encode({"apiVersion": "ray.io/v1", "kind": "RayService"}) is None


def test_the_generator_reads_field_numbers_from_proto_and_pointers_from_go() -> None:
    proto = """
package k8s.io.api.demo.v1;
message Thing {
  optional .k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta metadata = 1;
  repeated Item items = 2;
  map<string, string> labels = 3;
  optional int32 replicas = 4;
}
"""
    go = """
type Thing struct {
	Items []Item `json:"entries,omitempty" protobuf:"bytes,2,rep,name=items"`
	Replicas *int32 `json:"replicas,omitempty" protobuf:"varint,4,opt,name=replicas"`
}
"""
    fields = {f.number: f for f in parse_proto(proto)["k8s.io.api.demo.v1.Thing"]}
    assert fields[1].type == "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    assert (fields[2].type, fields[2].card) == ("k8s.io.api.demo.v1.Item", 1)
    assert (fields[3].type, fields[3].card) == ("string,string", 2)
    facts = parse_go(go)
    assert facts[("Thing", "items")] == ("entries", False, True)
    assert facts[("Thing", "replicas")] == ("replicas", True, True)
