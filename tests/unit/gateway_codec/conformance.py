#!/usr/bin/python3
"""tests/unit/gateway_codec/conformance.py: the JSON <-> protobuf transcoder against Python's
json_format (Debian's python3-protobuf) on seeded random gwtest.AllTypes messages.

For every message:
  pb -> JSON (C) equals MessageToJson's output as JSON values, with default options and with
  original names + emitted defaults;
  JSON -> pb (C) of MessageToJson's output (both name styles) parses to the same message
  (compared through deterministic serialization, since map entries have no byte order);
  encodings of messages without maps must be byte-identical to Python's serializer.
Exit status 1 on the first mismatch, printing the seed, the message and both sides.
"""
import argparse
import json
import math
import random
import struct
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--descriptors", required=True)
    ap.add_argument("--py", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=3000)
    a = ap.parse_args()
    sys.path.insert(0, a.py)
    import codec_test_pb2 as T
    from google.protobuf import json_format, struct_pb2, duration_pb2, timestamp_pb2
    from google.protobuf import wrappers_pb2, empty_pb2, field_mask_pb2

    rng = random.Random(a.seed)
    tool = subprocess.Popen([a.tool, a.descriptors], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def call(op, flags, name, payload):
        nb = name.encode()
        tool.stdin.write(op + bytes([flags]) + struct.pack("<I", len(nb)) + nb +
                         struct.pack("<I", len(payload)) + payload)
        tool.stdin.flush()
        h = tool.stdout.read(5)
        if len(h) != 5:
            sys.exit("codec tool died")
        n = struct.unpack("<I", h[1:])[0]
        return h[0], tool.stdout.read(n)

    CHARS = "abcXYZ019 \"\\/\n\t\x01\x1f\x7fé中😀\u2028"

    def rstr(k=12):
        return "".join(rng.choice(CHARS) for _ in range(rng.randint(0, k)))

    def rbytes():
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 20)))

    def rf32():
        c = rng.random()
        if c < 0.05:
            return rng.choice([float("inf"), float("-inf"), float("nan")])
        if c < 0.15:
            return 0.0
        x = rng.choice([rng.uniform(-1e6, 1e6), rng.uniform(-1, 1), rng.randint(-100, 100),
                        rng.uniform(-3e38, 3e38), 1e-40 * rng.random()])
        return struct.unpack("<f", struct.pack("<f", x))[0]

    def rf64(special=True):
        c = rng.random()
        if special and c < 0.05:
            return rng.choice([float("inf"), float("-inf"), float("nan")])
        if c < 0.15:
            return 0.0
        return rng.choice([rng.uniform(-1e10, 1e10), rng.uniform(-1, 1), float(rng.randint(-1000, 1000)),
                           rng.uniform(-1e300, 1e300), 5e-324 * rng.randint(1, 1000)])

    def rint(bits, signed):
        c = rng.random()
        if c < 0.15:
            return 0
        if signed:
            lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        else:
            lo, hi = 0, (1 << bits) - 1
        if c < 0.3:
            return rng.choice([lo, hi, -1 if signed else 1, 1])
        if c < 0.6:
            return rng.randint(max(lo, -1000), min(hi, 1000))
        return rng.randint(lo, hi)

    def renum():
        return rng.choice([0, 1, 2, -3, 1, 2, 7])

    SC = {
        "double": lambda: rf64(), "float": rf32, "int64": lambda: rint(64, True),
        "uint64": lambda: rint(64, False), "int32": lambda: rint(32, True),
        "fixed64": lambda: rint(64, False), "fixed32": lambda: rint(32, False),
        "bool": lambda: rng.random() < 0.5, "string": rstr, "bytes": rbytes,
        "uint32": lambda: rint(32, False), "enum": renum, "sfixed32": lambda: rint(32, True),
        "sfixed64": lambda: rint(64, True), "sint32": lambda: rint(32, True),
        "sint64": lambda: rint(64, True),
    }

    def fill_inner(m, depth):
        if rng.random() < 0.6:
            m.a = rint(32, True)
        if rng.random() < 0.6:
            m.b = rstr()
        for _ in range(rng.randint(0, 3)):
            m.c.append(rint(64, True))
        if rng.random() < 0.5:
            m.color = renum()
        if depth < 3 and rng.random() < 0.3:
            fill_inner(m.child, depth + 1)

    def rjson(depth=0):
        c = rng.randint(0, 5 if depth < 3 else 3)
        if c == 0:
            return None
        if c == 1:
            return rf64(False)
        if c == 2:
            return rstr()
        if c == 3:
            return rng.random() < 0.5
        if c == 4:
            return {rstr(6): rjson(depth + 1) for _ in range(rng.randint(0, 3))}
        return [rjson(depth + 1) for _ in range(rng.randint(0, 3))]

    def set_value(v, x):
        if x is None:
            v.null_value = 0
        elif isinstance(x, bool):
            v.bool_value = x
        elif isinstance(x, float):
            v.number_value = x
        elif isinstance(x, str):
            v.string_value = x
        elif isinstance(x, dict):
            v.struct_value.SetInParent()
            v.struct_value.update(x)
        else:
            v.list_value.SetInParent()
            v.list_value.extend(x)

    def rword():
        return "".join(rng.choice("abcxyz") for _ in range(rng.randint(1, 5)))

    def rpath():
        return ".".join("_".join(rword() for _ in range(rng.randint(1, 3)))
                        for _ in range(rng.randint(1, 3)))

    def rts(m):
        m.seconds = rng.randint(-62135596800, 253402300799)
        m.nanos = rng.choice([0, rng.randint(0, 999) * 1000000, rng.randint(0, 999999) * 1000,
                              rng.randint(0, 999999999)])

    def rdur(m):
        s = rng.randint(-315576000000, 315576000000) if rng.random() < 0.5 else rng.randint(-100, 100)
        ns = rng.choice([0, rng.randint(0, 999) * 1000000, rng.randint(0, 999999999)])
        if s < 0 or (s == 0 and rng.random() < 0.5):
            ns = -ns
        m.seconds, m.nanos = s, ns

    def rany(anym):
        c = rng.randint(0, 6)
        if c == 0:
            x = T.Inner()
            fill_inner(x, 1)
        elif c == 1:
            x = duration_pb2.Duration()
            rdur(x)
        elif c == 2:
            x = timestamp_pb2.Timestamp()
            rts(x)
        elif c == 3:
            x = struct_pb2.Struct()
            x.update({rstr(5): rjson(1) for _ in range(rng.randint(0, 3))})
        elif c == 4:
            x = wrappers_pb2.Int32Value(value=rint(32, True))
        elif c == 5:
            x = empty_pb2.Empty()
        else:
            x = field_mask_pb2.FieldMask(paths=[rpath() for _ in range(rng.randint(0, 3))])
        anym.Pack(x)

    def gen():
        m = T.AllTypes()
        p = 0.5
        for t, fn in SC.items():
            if rng.random() < p:
                setattr(m, "f_" + t, fn())
            if rng.random() < 0.3:
                getattr(m, "r_" + t).extend(fn() for _ in range(rng.randint(0, 4)))
        if rng.random() < p:
            fill_inner(m.f_inner, 0)
        for _ in range(rng.randint(0, 2)):
            fill_inner(m.r_inner.add(), 1)
        m.r_unpacked.extend(rint(32, True) for _ in range(rng.randint(0, 3)))
        if rng.random() < 0.3:
            m.o_int32 = rint(32, True)
        if rng.random() < 0.3:
            m.o_string = rstr()
        if rng.random() < 0.3:
            m.o_enum = renum()
        if rng.random() < 0.3:
            m.o_double = rf64()
        if rng.random() < 0.3:
            m.o_int64 = rint(64, True)
        if rng.random() < 0.3:
            m.o_bool = rng.random() < 0.5
        maps = [("m_int32_string", lambda: rint(32, True), rstr),
                ("m_int64_int64", lambda: rint(64, True), lambda: rint(64, True)),
                ("m_uint32_inner", lambda: rint(32, False), None),
                ("m_uint64_enum", lambda: rint(64, False), renum),
                ("m_sint32_bytes", lambda: rint(32, True), rbytes),
                ("m_sint64_double", lambda: rint(64, True), rf64),
                ("m_fixed32_float", lambda: rint(32, False), rf32),
                ("m_fixed64_bool", lambda: rint(64, False), lambda: rng.random() < 0.5),
                ("m_sfixed32_uint64", lambda: rint(32, True), lambda: rint(64, False)),
                ("m_sfixed64_int32", lambda: rint(64, True), lambda: rint(32, True)),
                ("m_bool_string", lambda: rng.random() < 0.5, rstr),
                ("m_string_inner", rstr, None),
                ("m_string_value", rstr, "value")]
        for name, kf, vf in maps:
            if rng.random() < 0.25:
                fld = getattr(m, name)
                for _ in range(rng.randint(0, 3)):
                    k = kf()
                    if vf is None:
                        fill_inner(fld[k], 1)
                    elif vf == "value":
                        set_value(fld[k], rjson(1))
                    else:
                        fld[k] = vf()
        c = rng.randint(0, 6)
        if c == 1:
            m.c_string = rstr()
        elif c == 2:
            m.c_int32 = rint(32, True)
        elif c == 3:
            fill_inner(m.c_inner, 1)
        elif c == 4:
            m.c_enum = renum()
        elif c == 5:
            m.c_null = 0
        if rng.random() < 0.3:
            rts(m.w_timestamp)
        if rng.random() < 0.3:
            rdur(m.w_duration)
        wr = [("w_double", lambda: rf64()), ("w_float", rf32), ("w_int64", lambda: rint(64, True)),
              ("w_uint64", lambda: rint(64, False)), ("w_int32", lambda: rint(32, True)),
              ("w_uint32", lambda: rint(32, False)), ("w_bool", lambda: rng.random() < 0.5),
              ("w_string", rstr), ("w_bytes", rbytes)]
        for name, fn in wr:
            if rng.random() < 0.2:
                getattr(m, name).value = fn()
        if rng.random() < 0.3:
            m.w_struct.update({rstr(5): rjson(1) for _ in range(rng.randint(0, 3))})
        if rng.random() < 0.3:
            set_value(m.w_value, rjson(0))
        if rng.random() < 0.2:
            m.w_list.extend([rjson(1) for _ in range(rng.randint(0, 3))])
        if rng.random() < 0.2:
            m.w_mask.paths.extend(rpath() for _ in range(rng.randint(0, 3)))
        if rng.random() < 0.2:
            m.w_empty.SetInParent()
        if rng.random() < 0.3:
            rany(m.w_any)
        for _ in range(rng.randint(0, 2) if rng.random() < 0.3 else 0):
            rts(m.rw_timestamp.add())
        for _ in range(rng.randint(0, 2) if rng.random() < 0.3 else 0):
            rany(m.rw_any.add())
        for _ in range(rng.randint(0, 2) if rng.random() < 0.3 else 0):
            set_value(m.rw_value.add(), rjson(1))
        for _ in range(rng.randint(0, 2) if rng.random() < 0.3 else 0):
            m.rw_int32.add().value = rint(32, True)
        if rng.random() < 0.3:
            m.custom_json = rstr()
        if rng.random() < 0.3:
            m.field_name_2x = rint(32, True)
        return m

    def fail(i, what, m, mine, ref):
        print(f"MISMATCH seed={a.seed} message #{i}: {what}")
        print("message:", m)
        if hasattr(mine, "ListFields") and hasattr(ref, "ListFields"):
            import difflib
            print("\n".join(difflib.unified_diff(str(ref).splitlines(), str(mine).splitlines(),
                                                 "reference", "meshd", lineterm="")))
        else:
            print("meshd:    ", mine)
            print("reference:", ref)
        sys.exit(1)

    from google.protobuf import symbol_database
    from google.protobuf.descriptor import FieldDescriptor as FD
    sdb = symbol_database.Default()

    def normalize(x):
        """Any values re-encoded deterministically (map order inside Any bytes)."""
        if x.DESCRIPTOR.full_name == "google.protobuf.Any" and x.type_url:
            inner = sdb.GetSymbol(x.TypeName())()
            x.Unpack(inner)
            normalize(inner)
            x.value = inner.SerializeToString(deterministic=True)
            return
        for fd, val in x.ListFields():
            if fd.cpp_type != FD.CPPTYPE_MESSAGE:
                continue
            if fd.message_type.GetOptions().map_entry:
                vfd = fd.message_type.fields_by_name["value"]
                if vfd.cpp_type == FD.CPPTYPE_MESSAGE:
                    for k in val:
                        normalize(val[k])
            elif fd.label == FD.LABEL_REPEATED:
                for e in val:
                    normalize(e)
            else:
                normalize(val)

    def has_map(x):
        """Does x hold a map entry anywhere (Struct included, Any contents included)?"""
        if x.DESCRIPTOR.full_name == "google.protobuf.Any" and x.type_url:
            inner = sdb.GetSymbol(x.TypeName())()
            x.Unpack(inner)
            return has_map(inner)
        for fd, val in x.ListFields():
            if fd.cpp_type != FD.CPPTYPE_MESSAGE:
                continue
            if fd.message_type.GetOptions().map_entry:
                if len(val):
                    return True
            elif fd.label == FD.LABEL_REPEATED:
                if any(has_map(e) for e in val):
                    return True
            elif has_map(val):
                return True
        return False

    def canon(x):
        y = type(x)()
        y.CopyFrom(x)
        normalize(y)
        return y.SerializeToString(deterministic=True)

    I64 = {FD.TYPE_INT64, FD.TYPE_UINT64, FD.TYPE_FIXED64, FD.TYPE_SFIXED64, FD.TYPE_SINT64}

    def variant(desc, obj):
        """Other accepted spellings of Python's JSON: original names, 64-bit integers as
        numbers, URL-safe unpadded base64, enums by number (well-known types left alone)."""
        if desc.full_name.startswith("google.protobuf.") or not isinstance(obj, dict):
            return obj
        out = {}
        for key, val in obj.items():
            fd = next(f for f in desc.fields if key in (f.json_name, f.name))
            if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
                vfd = fd.message_type.fields_by_name["value"]
                val = {k: one(vfd, v) for k, v in val.items()}
            elif fd.label == FD.LABEL_REPEATED:
                val = [one(fd, v) for v in val]
            else:
                val = one(fd, val)
            out[fd.name if rng.random() < 0.5 else key] = val
        return out

    def one(fd, v):
        if fd.message_type is not None:
            return variant(fd.message_type, v)
        if fd.type in I64 and isinstance(v, str) and rng.random() < 0.5:
            return int(v)
        if fd.type == FD.TYPE_BYTES and rng.random() < 0.5:
            v = v.replace("+", "-").replace("/", "_")
            return v.rstrip("=") if rng.random() < 0.5 else v
        if fd.type == FD.TYPE_ENUM and isinstance(v, str) and fd.enum_type.full_name != \
                "google.protobuf.NullValue" and rng.random() < 0.5:
            return fd.enum_type.values_by_name[v].number
        return v

    name = "gwtest.AllTypes"
    exact = 0
    variants = 0
    for i in range(a.count):
        m = gen()
        pb = m.SerializeToString()
        # pb -> JSON, default options and original names + defaults.
        for flags, kw in ((0, {}), (3, {"including_default_value_fields": True,
                                        "preserving_proto_field_name": True})):
            st, out = call(b"P", flags, name, pb)
            ref = json_format.MessageToJson(m, **kw)
            if st != 0:
                fail(i, f"pb->json flags={flags} failed: {out.decode(errors='replace')}", m, out, ref)
            try:
                mine = json.loads(out)
            except ValueError as e:
                fail(i, f"pb->json gave invalid JSON ({e})", m, out, ref)
            if mine != json.loads(ref) and json.dumps(mine, sort_keys=True) != json.dumps(json.loads(ref), sort_keys=True):
                fail(i, f"pb->json flags={flags} differs", m, json.dumps(mine, sort_keys=True),
                     json.dumps(json.loads(ref), sort_keys=True))
        # JSON -> pb from both name styles.
        for kw in ({}, {"preserving_proto_field_name": True}):
            js = json_format.MessageToJson(m, **kw)
            st, out = call(b"J", 0, name, js.encode())
            if st != 0:
                fail(i, f"json->pb failed: {out.decode(errors='replace')}", m, js, "")
            back = T.AllTypes()
            try:
                back.ParseFromString(out)
            except Exception as e:
                fail(i, f"json->pb gave bytes Python cannot parse ({e})", m, out.hex(), pb.hex())
            if canon(back) != canon(m):
                fail(i, "json->pb differs", m, back, m)
            if not kw and out == pb:
                exact += 1
            elif out != pb and not has_map(m):
                fail(i, "json->pb bytes differ from Python's serializer (no maps involved)", m,
                     out.hex(), pb.hex())
        # Other spellings: Python's Parse and ours must agree.
        if i % 3 == 0:
            js = json.dumps(variant(T.AllTypes.DESCRIPTOR, json.loads(json_format.MessageToJson(m))))
            ref = T.AllTypes()
            json_format.Parse(js, ref)
            st, out = call(b"J", 0, name, js.encode())
            if st != 0:
                fail(i, f"json->pb of a variant failed: {out.decode(errors='replace')}", m, js, "")
            back = T.AllTypes()
            back.ParseFromString(out)
            if canon(back) != canon(ref):
                fail(i, "json->pb of a variant differs from json_format.Parse", m, back, ref)
            variants += 1
    tool.stdin.close()
    tool.wait()
    print(f"conformance: {a.count} messages both ways (seed {a.seed}); "
          f"{exact} of {a.count} json->pb encodings byte-identical to Python's serializer "
          f"(the rest hold maps, which have no byte order; all parse to equal messages); "
          f"{variants} respelled JSON inputs agree with json_format.Parse")


if __name__ == "__main__":
    main()
