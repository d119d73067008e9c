"""Writes tests/fixtures/torch/tiny_state_dict.pth, the torch.save file src/store/torch_file.rs
reads in its unit tests (committed, so those tests run without Python).

Run: .venv/bin/python scripts/make_torch_fixtures.py
"""
import collections
import os

import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "torch")
os.makedirs(OUT, exist_ok=True)

lin = torch.nn.Linear(3, 2)
bn = torch.nn.BatchNorm1d(2)
with torch.no_grad():
    lin.weight.copy_(torch.arange(6.0).reshape(2, 3) / 4)
    lin.bias.fill_(0.5)
    bn.num_batches_tracked.fill_(7)
sd = collections.OrderedDict()
for prefix, m in (("lin", lin), ("bn", bn)):
    for k, v in m.state_dict().items():
        sd[f"{prefix}.{k}"] = v
sd["transposed"] = sd["lin.weight"].t()          # a non-contiguous view of a shared storage
sd["offset_view"] = torch.arange(10.0)[3:7]      # a view with a storage offset
sd["double"] = torch.tensor([0.1], dtype=torch.float64)
torch.save(sd, os.path.join(OUT, "tiny_state_dict.pth"))
print("wrote", os.listdir(OUT))
