#!/usr/bin/env python3
"""Write kubernetes.binpb: the protobuf descriptors of the API groups Hortator serves.

Kubernetes' Go clients (kubectl included) carry the gzipped FileDescriptorProto of every
k8s.io/**/generated.proto they were built with. This script finds them in a client binary,
drops the import of gogo.proto (only Go code-generation options live there) and writes a
FileDescriptorSet, dependencies first, for hortator-api's protobuf request decoder.

    host/api/proto/extract-descriptors.py /usr/bin/kubectl host/api/proto/kubernetes.binpb
"""
import re
import sys
import zlib

ROOTS = [
    "k8s.io/api/core/v1/generated.proto",
    "k8s.io/api/apps/v1/generated.proto",
    "k8s.io/api/autoscaling/v1/generated.proto",
    "k8s.io/api/coordination/v1/generated.proto",
    "k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto",
]
GOGO = b"github.com/gogo/protobuf/gogoproto/gogo.proto"


def varint(buf, i):
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def encode_varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def fields(buf):
    """Yield (number, wire type, payload, raw bytes) for each field of a message."""
    i = 0
    while i < len(buf):
        start = i
        key, i = varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 2:
            length, i = varint(buf, i)
            value = buf[i : i + length]
            i += length
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield number, wire, value, buf[start:i]


def descriptors(binary):
    """Every k8s.io FileDescriptorProto gzipped inside `binary`, by file name."""
    found = {}
    for match in re.finditer(b"\x1f\x8b\x08\x00\x00\x00\x00\x00", binary):
        try:
            data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(
                binary[match.start() : match.start() + 4_000_000]
            )
            parsed = list(fields(data))
        except (zlib.error, ValueError, IndexError):
            continue
        names = [v for n, w, v, _ in parsed if n == 1 and w == 2]
        if names and names[0].startswith(b"k8s.io/"):
            found[names[0].decode()] = parsed
    return found


def main():
    binary, output = sys.argv[1], sys.argv[2]
    with open(binary, "rb") as f:
        found = descriptors(f.read())
    ordered, seen = [], set()

    def visit(name):
        if name in seen:
            return
        seen.add(name)
        if name not in found:
            sys.exit(f"{binary} has no descriptor for {name}")
        for number, _, value, _ in found[name]:
            if number == 3 and value != GOGO:
                visit(value.decode())
        ordered.append(name)

    for root in ROOTS:
        visit(root)
    out = bytearray()
    for name in ordered:
        proto = b"".join(raw for number, _, value, raw in found[name] if not (number == 3 and value == GOGO))
        out += b"\x0a" + encode_varint(len(proto)) + proto
    with open(output, "wb") as f:
        f.write(out)
    print(f"{output}: {len(ordered)} files, {len(out)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
