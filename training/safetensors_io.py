"""safetensors reader/writer by hand (no safetensors package needed).

Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
"__metadata__" optional; then the raw little-endian data, offsets relative to the data start.
"""
import json
import struct

import numpy as np

DT = {"F16": np.float16, "F32": np.float32, "BF16": None, "I64": np.int64, "I32": np.int32}
NP2DT = {np.dtype(np.float16): "F16", np.dtype(np.float32): "F32"}


def write_safetensors(path, tensors, metadata=None):
    """tensors: dict name -> numpy array (float16/float32). Names are written sorted."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        b = a.tobytes()
        header[name] = {"dtype": NP2DT[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)  # align data start to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError("bad header length")
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = DT[info["dtype"]]
        b, e = info["data_offsets"]
        if not (0 <= b <= e <= len(data) - base):
            raise ValueError("bad offsets for " + name)
        a = np.frombuffer(data[base + b:base + e], dtype=np.dtype(dt).newbyteorder("<"))
        if a.size != int(np.prod(info["shape"])):
            raise ValueError("bad size for " + name)
        out[name] = a.reshape(info["shape"])
    return out
