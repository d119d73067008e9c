"""Writes the small pickle fixtures that src/pickle.rs reads in its unit tests, into
tests/fixtures/pickle/. The files are committed, so the tests run without Python; run this again only
to change them.

Run: .venv/bin/python scripts/make_pickle_fixtures.py
"""
import collections
import io
import os
import pickle
import zipfile

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "pickle")
os.makedirs(OUT, exist_ok=True)


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


shared = [1, 2]
basic = {"none": None, "flags": (True, False),
         "ints": [0, 255, 65535, -1, 2**31 - 1, -2**31, 2**40, -2**62],
         "float": -2.5e-3, "text": "h\u00e9llo \u2211", "bytes": bytes([0, 1, 2, 255]),
         "empty": (), "nested": {3: "three"}, "shared": (shared, shared),
         "ordered": collections.OrderedDict([("b", 1), ("a", 2)])}
for proto in range(2, 6):
    write(f"basic_p{proto}.pkl", pickle.dumps(basic, protocol=proto))
write("basic_p0.pkl", pickle.dumps({"a": [1, 2.5, None], "b": (True, "x\u00e9")}, protocol=0))

arr = np.arange(6, dtype=np.float32).reshape(2, 3) / 2
for proto in (2, 4):
    write(f"numpy_p{proto}.pkl", pickle.dumps(arr, protocol=proto))

# A Python 2 protocol 2 pickle laid out as the CIFAR python batches are (Python 2 str keys and
# array data, written with SHORT_BINSTRING), written by hand: no Python 2 is at hand.
data = bytes([0, 1, 2, 3, 250, 251, 252, 253])
py2 = (b"\x80\x02}q\x00("
       b"U\x0bbatch_labelq\x01U\x15training batch 1 of 5q\x02"
       b"U\x06labelsq\x03]q\x04(K\x06K\x09e"
       b"U\x04dataq\x05"
       b"cnumpy.core.multiarray\n_reconstruct\nq\x06cnumpy\nndarray\nq\x07"
       b"K\x00\x85q\x08U\x01bq\x09\x87q\x0aRq\x0b"
       b"(K\x01K\x02K\x04\x86q\x0ccnumpy\ndtype\nq\x0dU\x02u1K\x00K\x01\x87Rq\x0e"
       b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89U\x08" + data + b"tb"
       b"u.")
check = pickle.loads(py2, encoding="bytes")
assert check[b"labels"] == [6, 9] and check[b"data"].tolist() == [[0, 1, 2, 3], [250, 251, 252, 253]]
write("cifar_style_py2.pkl", py2)

buf = io.BytesIO()
torch.save({"w": torch.zeros(2, 3)}, buf)
with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
    name = next(n for n in z.namelist() if n.endswith("/data.pkl"))
    write("torch_data.pkl", z.read(name))
print("wrote", sorted(os.listdir(OUT)))
