"""The reference CD network in PyTorch (SPEC 2.1: torchvision ResNet without fc, instance projector,
feature predictor), for the interchange tests of cdw.

  write OUT [--backbone ResNet18] [--hidden-dim 16] [--feature-num 8] [--image-size 32] [--seed 0]
      OUT/state_dict.pth    torch.save(model.state_dict()) after two Adam steps (so BN running
                            statistics and Adam moments are not their initial values)
      OUT/<name>.pth.tar    the reference's training checkpoint (state_dict, optimizer, epoch,
                            records, best_metrics, best_nmi, scheduler); name given by --checkpoint-name
      OUT/io.pth            {x, h, f}: an input batch and the network's outputs in eval mode, plus
                            a few Adam state tensors to check the optimizer import against
  check OUT FILE.safetensors
      loads FILE into a fresh network with load_state_dict(strict=True), runs x in eval mode and
      compares h and f with OUT/io.pth; exits 1 when they differ by more than 1e-5

Run with the venv's Python: .venv/bin/python scripts/reference_model.py write /tmp/ref
"""
import argparse
import json
import struct
import sys

import torch
import torch.nn as nn
import torchvision


class Network(nn.Module):
    """The reference network: backbone h, instance projector z, feature predictor f."""

    def __init__(self, backbone, hidden_dim, feature_num):
        super().__init__()
        ctor, rep = {"ResNet18": (torchvision.models.resnet18, 512),
                     "ResNet34": (torchvision.models.resnet34, 512),
                     "ResNet50": (torchvision.models.resnet50, 2048)}[backbone]
        self.resnet = ctor()
        self.resnet.fc = nn.Identity()
        self.instance_projector = nn.Sequential(
            nn.Linear(rep, rep, bias=False), nn.BatchNorm1d(rep), nn.ReLU(),
            nn.Linear(rep, hidden_dim))
        self.feature_predictor = nn.Sequential(
            nn.Linear(hidden_dim, rep, bias=False), nn.BatchNorm1d(rep), nn.ReLU(),
            nn.Linear(rep, feature_num, bias=False), nn.BatchNorm1d(feature_num), nn.Sigmoid())

    def forward(self, x):
        h = self.resnet(x)
        z = self.instance_projector(h)
        return h, z, self.feature_predictor(z)


def read_safetensors(path):
    """A safetensors file as a dict of tensors (no safetensors package needed)."""
    dtypes = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16,
              "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32,
              "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        buf = bytearray(data[8 + n + start:8 + n + end])
        t = torch.frombuffer(buf, dtype=dtypes[info["dtype"]]) if buf else torch.empty(0, dtype=dtypes[info["dtype"]])
        out[name] = t.reshape(info["shape"])
    return out


def write(args):
    torch.manual_seed(args.seed)
    net = Network(args.backbone, args.hidden_dim, args.feature_num)
    opt = torch.optim.Adam(net.parameters(), lr=3e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    net.train()
    for _ in range(2):
        xb = torch.rand(8, 3, args.image_size, args.image_size)
        h, z, f = net(xb)
        loss = (z ** 2).mean() + f.mean() + h.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    x = torch.rand(4, 3, args.image_size, args.image_size)
    with torch.no_grad():
        h, _, f = net(x)
    sd = net.state_dict()
    torch.save(sd, f"{args.out}/state_dict.pth")
    state = opt.state_dict()
    names = [n for n, _ in net.named_parameters()]
    records = {k: [] for k in ["epoch", "best_nmi_feature", "best_ari_feature", "best_acc_feature",
                               "best_nmi_backbone", "best_ari_backbone", "best_acc_backbone",
                               "nmi_backbone", "ari_backbone", "acc_backbone",
                               "nmi_feature", "ari_feature", "acc_feature"]}
    for k, v in zip(records, [100, 0.41, 0.31, 0.51, 0.42, 0.32, 0.52, 0.40, 0.30, 0.50, 0.39, 0.29, 0.49]):
        records[k].append(v)
    best = {"nmi_feature": 0.41, "ari_feature": 0.31, "acc_feature": 0.51,
            "nmi_backbone": 0.42, "ari_backbone": 0.32, "acc_backbone": 0.52}
    torch.save({"epoch": 2, "state_dict": sd, "optimizer": state, "run_id": None,
                "records": records, "best_metrics": best, "best_nmi": 0.42,
                "scheduler": sched.state_dict()},
               f"{args.out}/{args.checkpoint_name}")
    io = {"x": x, "h": h, "f": f,
          "adam_step": state["state"][0]["step"],
          "adam_exp_avg.resnet.conv1.weight": state["state"][names.index("resnet.conv1.weight")]["exp_avg"],
          "adam_exp_avg_sq.instance_projector.3.bias":
              state["state"][names.index("instance_projector.3.bias")]["exp_avg_sq"]}
    torch.save(io, f"{args.out}/io.pth")
    print(f"wrote {args.out}: {len(sd)} state_dict entries, "
          f"{sum(p.numel() for p in net.parameters())} parameters")


def check(args):
    io = torch.load(f"{args.out}/io.pth")
    sd = read_safetensors(args.file)
    k = sd["feature_predictor.3.weight"].shape[0]
    hidden = sd["instance_projector.3.weight"].shape[0]
    backbone = ("ResNet50" if "resnet.layer1.0.conv3.weight" in sd else
                "ResNet34" if "resnet.layer1.2.conv1.weight" in sd else "ResNet18")
    net = Network(backbone, hidden, k)
    net.load_state_dict(sd, strict=True)
    net.eval()
    with torch.no_grad():
        h, _, f = net(io["x"])
    dh = (h - io["h"]).abs().max().item()
    df = (f - io["f"]).abs().max().item()
    print(f"loaded strict; max |h diff| {dh:.3g}, max |f diff| {df:.3g}")
    sys.exit(0 if dh < 1e-5 and df < 1e-5 else 1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("out")
    w.add_argument("--backbone", default="ResNet18")
    w.add_argument("--hidden-dim", type=int, default=16)
    w.add_argument("--feature-num", type=int, default=8)
    w.add_argument("--image-size", type=int, default=32)
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--checkpoint-name", default="shapes_checkpoint_bs8_lr0.0003_ResNet18.pth.tar")
    c = sub.add_parser("check")
    c.add_argument("out")
    c.add_argument("file")
    args = p.parse_args()
    write(args) if args.cmd == "write" else check(args)


if __name__ == "__main__":
    main()
