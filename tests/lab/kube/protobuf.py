"""Kubernetes protobuf request bodies, decoded into (and, for tests, encoded from) their JSON shape.

Stands in for the protobuf half of kube-apiserver's serializer: ``helm`` 3 stores its releases in
Secrets sent as ``application/vnd.kubernetes.protobuf`` and ``kubectl`` 1.32+ sends typed creates
that way, so the lab's API server must read them. A body is the 4-byte magic ``k8s\\x00`` followed
by a ``runtime.Unknown`` message (typeMeta {apiVersion, kind}, raw, contentEncoding, contentType)
whose ``raw`` field is the object itself, encoded with the field numbers of k8s.io/api's
``generated.proto``.

``decode_object`` returns exactly the dict that Go's ``encoding/json`` would produce for the same
object, i.e. what the client would have sent with ``application/json``: empty strings and zero
numbers are left out (``omitempty``), pointer fields (``immutable``, ``automountServiceAccountToken``)
appear whenever they were set, ``metadata.creationTimestamp`` is always there (``None`` when zero),
a Namespace always has ``spec`` and ``status``, bytes become base64 strings, times RFC 3339.

Modelled kinds (apiVersion v1 only): Secret, ConfigMap, Namespace, ServiceAccount, with the whole
ObjectMeta (ownerReferences included). Not modelled: every other kind (``ValueError``), a
``contentEncoding`` other than none, ``managedFields`` (skipped), unknown fields (skipped, as
protobuf does), protobuf *responses* (the lab answers in JSON, which every client accepts) and
lists/watch events in protobuf.
"""
from __future__ import annotations

import base64
import datetime

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

# Wire types of the protobuf encoding.
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5

# A field: (number, json name, type, mode). Types: "string", "bytes" (base64 in JSON), "bool", "int"
# (int32/int64 varint), "time" (meta/v1 Time), "map_string", "map_bytes" (map<string, string|bytes>),
# or the name of a message in _MESSAGES. Modes say how Go marshals the field, which decides both when
# JSON shows it and when protobuf carries it:
#   "value"  non-pointer field with json omitempty: always on the wire, in JSON only when non-zero;
#   "plain"  non-pointer field without omitempty: always on the wire and in JSON;
#   "ptr"    pointer field: on the wire and in JSON only when set;
#   "struct" non-pointer struct: always on the wire and in JSON (a zero Time is JSON null);
#   "rep"    repeated field or map: one wire entry per element, in JSON when non-empty;
#   "wire"   always on the wire, never in JSON (selfLink: deprecated, always empty).
_OBJECT_META = (
    (1, "name", "string", "value"),
    (2, "generateName", "string", "value"),
    (3, "namespace", "string", "value"),
    (4, "selfLink", "string", "wire"),
    (5, "uid", "string", "value"),
    (6, "resourceVersion", "string", "value"),
    (7, "generation", "int", "value"),
    (8, "creationTimestamp", "time", "struct"),
    (9, "deletionTimestamp", "time", "ptr"),
    (10, "deletionGracePeriodSeconds", "int", "ptr"),
    (11, "labels", "map_string", "rep"),
    (12, "annotations", "map_string", "rep"),
    (13, "ownerReferences", "OwnerReference", "rep"),
    (14, "finalizers", "string", "rep"),
)

_MESSAGES = {
    "ObjectMeta": _OBJECT_META,
    "OwnerReference": (
        (1, "kind", "string", "plain"),
        (3, "name", "string", "plain"),
        (4, "uid", "string", "plain"),
        (5, "apiVersion", "string", "plain"),
        (6, "controller", "bool", "ptr"),
        (7, "blockOwnerDeletion", "bool", "ptr"),
    ),
    "Secret": (
        (1, "metadata", "ObjectMeta", "struct"),
        (2, "data", "map_bytes", "rep"),
        (3, "type", "string", "value"),
        (4, "stringData", "map_string", "rep"),
        (5, "immutable", "bool", "ptr"),
    ),
    "ConfigMap": (
        (1, "metadata", "ObjectMeta", "struct"),
        (2, "data", "map_string", "rep"),
        (3, "binaryData", "map_bytes", "rep"),
        (4, "immutable", "bool", "ptr"),
    ),
    "Namespace": (
        (1, "metadata", "ObjectMeta", "struct"),
        (2, "spec", "NamespaceSpec", "struct"),
        (3, "status", "NamespaceStatus", "struct"),
    ),
    "NamespaceSpec": (
        (1, "finalizers", "string", "rep"),
    ),
    "NamespaceStatus": (
        (1, "phase", "string", "value"),
        (2, "conditions", "NamespaceCondition", "rep"),
    ),
    "NamespaceCondition": (
        (1, "type", "string", "plain"),
        (2, "status", "string", "plain"),
        (4, "lastTransitionTime", "time", "struct"),
        (5, "reason", "string", "value"),
        (6, "message", "string", "value"),
    ),
    "ServiceAccount": (
        (1, "metadata", "ObjectMeta", "struct"),
        (2, "secrets", "ObjectReference", "rep"),
        (3, "imagePullSecrets", "LocalObjectReference", "rep"),
        (4, "automountServiceAccountToken", "bool", "ptr"),
    ),
    "ObjectReference": (
        (1, "kind", "string", "value"),
        (2, "namespace", "string", "value"),
        (3, "name", "string", "value"),
        (4, "uid", "string", "value"),
        (5, "apiVersion", "string", "value"),
        (6, "resourceVersion", "string", "value"),
        (7, "fieldPath", "string", "value"),
    ),
    "LocalObjectReference": (
        (1, "name", "string", "value"),
    ),
}

# The kinds a body may carry (all in the core group, version v1).
KINDS = ("Secret", "ConfigMap", "Namespace", "ServiceAccount")

_WIRE_TYPE = {"string": _LEN, "bytes": _LEN, "bool": _VARINT, "int": _VARINT, "time": _LEN,
              "map_string": _LEN, "map_bytes": _LEN}


# --- wire format -------------------------------------------------------------------------------

def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint at byte %d" % pos)
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes at byte %d" % pos)


def _fields(buf: bytes):
    """Yield (field number, wire type, value) for each field of one message; value is int or bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0 at byte %d" % pos)
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos)
        elif wire == _LEN:
            length, pos = _read_varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("field %d is %d bytes long but only %d remain" % (number, length, len(buf) - pos))
            value, pos = buf[pos:pos + length], pos + length
        elif wire in (_I64, _I32):
            size = 8 if wire == _I64 else 4
            if pos + size > len(buf):
                raise ValueError("truncated fixed-size field %d" % number)
            value, pos = int.from_bytes(buf[pos:pos + size], "little"), pos + size
        else:
            raise ValueError("unsupported wire type %d for field %d" % (wire, number))
        yield number, wire, value


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("a string field is not UTF-8: %s" % exc) from exc


def _write_varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _write_varint(number << 3 | wire)


def _len_field(number: int, payload: bytes) -> bytes:
    return _key(number, _LEN) + _write_varint(len(payload)) + payload


# --- time ----------------------------------------------------------------------------------------

def _decode_time(buf: bytes):
    seconds = nanos = 0
    for number, wire, value in _fields(buf):
        if number == 1 and wire == _VARINT:
            seconds = _signed64(value)
        elif number == 2 and wire == _VARINT:
            nanos = value
    if seconds == 0 and nanos == 0:
        return None
    # meta/v1 Time marshals to JSON with second precision, in UTC.
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _encode_time(text) -> bytes:
    if not text:
        return b""
    moment = datetime.datetime.strptime(text.replace("Z", "+00:00")[:19] + "+0000", "%Y-%m-%dT%H:%M:%S%z")
    return _key(1, _VARINT) + _write_varint(int(moment.timestamp())) + _key(2, _VARINT) + _write_varint(0)


# --- messages ------------------------------------------------------------------------------------

def _zero(kind: str):
    if kind in ("string", "bytes"):
        return ""
    if kind == "int":
        return 0
    if kind == "bool":
        return False
    return None


def _decode_scalar(kind: str, wire: int, value):
    expected = _WIRE_TYPE.get(kind, _LEN)
    if wire != expected:
        raise ValueError("a %s field arrived with wire type %d" % (kind, wire))
    if kind == "string":
        return _text(value)
    if kind == "bytes":
        return base64.b64encode(value).decode("ascii")
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return _signed64(value)
    if kind == "time":
        return _decode_time(value)
    return _decode_message(kind, value)


def _decode_map_entry(kind: str, buf: bytes) -> tuple[str, str]:
    key, val = "", b""
    for number, wire, value in _fields(buf):
        if wire != _LEN:
            raise ValueError("a map entry field arrived with wire type %d" % wire)
        if number == 1:
            key = _text(value)
        elif number == 2:
            val = value
    if kind == "map_bytes":
        return key, base64.b64encode(val).decode("ascii")
    return key, _text(val)


def _decode_message(name: str, buf: bytes) -> dict:
    schema = {spec[0]: spec for spec in _MESSAGES[name]}
    seen: dict = {}
    for number, wire, value in _fields(buf):
        spec = schema.get(number)
        if spec is None:
            continue  # unknown or deliberately skipped (managedFields), as protobuf readers do
        _number, json_name, kind, mode = spec
        if kind.startswith("map_"):
            entry_key, entry_value = _decode_map_entry(kind, value)
            seen.setdefault(json_name, {})[entry_key] = entry_value
        elif mode == "rep":
            seen.setdefault(json_name, []).append(_decode_scalar(kind, wire, value))
        else:
            seen[json_name] = _decode_scalar(kind, wire, value)
    result = {}
    for _number, json_name, kind, mode in _MESSAGES[name]:
        if mode == "wire":
            continue
        present = json_name in seen
        value = seen.get(json_name)
        if mode == "value":
            if present and value != _zero(kind):
                result[json_name] = value
        elif mode == "plain":
            result[json_name] = value if present else _zero(kind)
        elif mode == "struct":
            if kind == "time":
                result[json_name] = value
            else:
                result[json_name] = value if present else _decode_message(kind, b"")
        elif present:  # "ptr" and "rep"
            result[json_name] = value
    return result


def _encode_scalar(kind: str, value) -> bytes:
    """The payload of a length-delimited field, or the varint of a numeric one."""
    if kind == "string":
        return str(value).encode("utf-8")
    if kind == "bytes":
        return base64.b64decode(value)
    if kind in ("bool", "int"):
        return _write_varint(int(value))
    if kind == "time":
        return _encode_time(value)
    return _encode_message(kind, value or {})


def _encode_field(number: int, kind: str, value) -> bytes:
    payload = _encode_scalar(kind, value)
    if _WIRE_TYPE.get(kind, _LEN) == _VARINT:
        return _key(number, _VARINT) + payload
    return _len_field(number, payload)


def _encode_message(name: str, obj: dict) -> bytes:
    out = bytearray()
    for number, json_name, kind, mode in _MESSAGES[name]:
        value = obj.get(json_name)
        if kind.startswith("map_"):
            value_kind = "bytes" if kind == "map_bytes" else "string"
            for entry_key in sorted(value or {}):
                entry = _len_field(1, entry_key.encode("utf-8")) + _len_field(2, _encode_scalar(value_kind, value[entry_key]))
                out += _len_field(number, entry)
        elif mode == "rep":
            for item in value or []:
                out += _encode_field(number, kind, item)
        elif mode == "ptr":
            if value is not None:
                out += _encode_field(number, kind, value)
        else:
            # Go's generated marshallers write non-pointer fields even when they are zero.
            out += _encode_field(number, kind, _zero(kind) if value is None else value)
    return bytes(out)


# --- public interface ----------------------------------------------------------------------------

def decode_object(body: bytes) -> dict:
    """The JSON-shaped dict of a ``application/vnd.kubernetes.protobuf`` request body.

    Raises ValueError for a body without the ``k8s\\x00`` envelope, a malformed message, a
    ``contentEncoding`` (none is modelled) or a kind other than v1 Secret/ConfigMap/Namespace/
    ServiceAccount.
    """
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise ValueError("a protobuf body is bytes, got %s" % type(body).__name__)
    body = bytes(body)
    if not body.startswith(MAGIC):
        raise ValueError("not a Kubernetes protobuf body: it does not start with k8s\\x00")
    api_version = kind = encoding = ""
    raw = b""
    for number, wire, value in _fields(body[len(MAGIC):]):
        if wire != _LEN:
            continue
        if number == 1:
            for sub_number, sub_wire, sub_value in _fields(value):
                if sub_wire == _LEN and sub_number == 1:
                    api_version = _text(sub_value)
                elif sub_wire == _LEN and sub_number == 2:
                    kind = _text(sub_value)
        elif number == 2:
            raw = value
        elif number == 3:
            encoding = _text(value)
    if encoding:
        raise ValueError("contentEncoding %r is not modelled" % encoding)
    if api_version != "v1" or kind not in KINDS:
        raise ValueError("protobuf bodies of %s %s are not modelled (only v1 %s)" % (
            api_version or "<no apiVersion>", kind or "<no kind>", ", ".join(KINDS)))
    obj = {"kind": kind, "apiVersion": api_version}
    obj.update(_decode_message(kind, raw))
    return obj


def encode_object(obj: dict) -> bytes:
    """The protobuf body a Go client sends for ``obj`` (a JSON-shaped v1 object of a modelled kind).

    For tests. Fields are written the way Go's generated marshallers write them (non-pointer fields
    even when zero, map keys sorted), so ``encode_object(decode_object(b)) == b`` for real bodies.
    """
    kind = obj.get("kind")
    api_version = obj.get("apiVersion", "v1")
    if api_version != "v1" or kind not in KINDS:
        raise ValueError("protobuf bodies of %s %s are not modelled (only v1 %s)" % (api_version, kind, ", ".join(KINDS)))
    type_meta = _len_field(1, api_version.encode()) + _len_field(2, kind.encode())
    unknown = (_len_field(1, type_meta) + _len_field(2, _encode_message(kind, obj))
               + _len_field(3, b"") + _len_field(4, b""))
    return MAGIC + unknown
