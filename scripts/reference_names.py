"""Writes the state_dict names of the reference CD network (the Network of reference_model.py,
built from torchvision's ResNet) to tests/fixtures/state_dict/<backbone>.txt, with shapes and
dtypes, and prints each network's entry and trainable parameter counts.

Run: .venv/bin/python scripts/reference_names.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_model import Network  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "state_dict")

for name in ["ResNet18", "ResNet34", "ResNet50"]:
    net = Network(name, hidden_dim=128, feature_num=128)
    sd = net.state_dict()
    with open(os.path.join(OUT, f"{name}.txt"), "w") as f:
        for k, v in sd.items():
            f.write(f"{k} {list(v.shape)} {str(v.dtype).replace('torch.', '')}\n")
    print(name, len(sd), sum(p.numel() for p in net.parameters() if p.requires_grad))
