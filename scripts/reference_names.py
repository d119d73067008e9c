"""Writes the state_dict names of the reference CD network, built from torchvision's ResNet as the
reference implementation builds it, to tests/fixtures/state_dict/<backbone>.txt.

Run: .venv/bin/python scripts/reference_names.py
"""
import os
import torch.nn as nn
import torchvision

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "state_dict")


class Network(nn.Module):
    def __init__(self, resnet, rep_dim, hidden_dim=128, feature_num=128):
        super().__init__()
        self.resnet = resnet
        self.instance_projector = nn.Sequential(
            nn.Linear(rep_dim, rep_dim, bias=False), nn.BatchNorm1d(rep_dim), nn.ReLU(),
            nn.Linear(rep_dim, hidden_dim))
        self.feature_predictor = nn.Sequential(
            nn.Linear(hidden_dim, rep_dim, bias=False), nn.BatchNorm1d(rep_dim), nn.ReLU(),
            nn.Linear(rep_dim, feature_num, bias=False), nn.BatchNorm1d(feature_num), nn.Sigmoid())


for name, ctor, rep in [("ResNet18", torchvision.models.resnet18, 512),
                        ("ResNet34", torchvision.models.resnet34, 512),
                        ("ResNet50", torchvision.models.resnet50, 2048)]:
    resnet = ctor()
    resnet.fc = nn.Identity()
    net = Network(resnet, rep)
    sd = net.state_dict()
    with open(os.path.join(OUT, f"{name}.txt"), "w") as f:
        for k, v in sd.items():
            f.write(f"{k} {list(v.shape)} {str(v.dtype).replace('torch.', '')}\n")
    print(name, len(sd), sum(p.numel() for p in net.parameters() if p.requires_grad))
