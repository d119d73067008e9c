#!/usr/bin/env python3
"""Writes events.jsonl and train.log of the running fixture run (tests/fixtures/runs/shapes/
bs32_lr0.0003_ResNet18) from its metrics.csv and evaluation.csv: the Started event, 32 steps of
each of the 6 completed epochs (losses wandering around the epoch mean, deterministically), the
Epoch, Evaluation and Checkpoint events, then 12 steps of epoch 7, the one in progress."""
import csv, json, math, os

run = os.path.join(os.path.dirname(__file__), "..", "tests/fixtures/runs/shapes/bs32_lr0.0003_ResNet18")
metrics = list(csv.DictReader(open(os.path.join(run, "metrics.csv"))))
evals = list(csv.DictReader(open(os.path.join(run, "evaluation.csv"))))
steps, batch = 32, 32
out = [dict(event="started", experiment="bs32_lr0.0003_ResNet18", dataset="shapes", method="cd",
            device="cuda:0", parameters=11_498_568, images=1024, epochs=40, start_epoch=1,
            steps_per_epoch=steps, batch_size=batch)]

def step(epoch, s, total, inst, feat, ips):
    wobble = 0.08 * math.sin(1.7 * s + epoch) + 0.03 * math.cos(5.1 * s)
    share = inst / total
    t = round(total * (1 + wobble) + 0.15 * (steps / 2 - s) / steps, 4)
    return dict(event="step", epoch=epoch, step=s, steps=steps,
                instance_loss=round(t * share, 4), feature_loss=round(t * (1 - share), 4),
                total_loss=t, lr=0.0003, images_per_sec=ips)

for m, e in zip(metrics, evals):
    ep = int(m["epoch"])
    total, inst, feat = float(m["total_loss"]), float(m["instance_loss"]), float(m["feature_loss"])
    for s in range(1, steps + 1):
        out.append(step(ep, s, total, inst, feat, float(m["images_per_sec"])))
    out.append(dict(event="epoch", epoch=ep, epochs=40, instance_loss=inst, feature_loss=feat,
                    total_loss=total, lr=0.0003, seconds=float(m["seconds"]),
                    images_per_sec=float(m["images_per_sec"])))
    ev = dict(event="evaluation", epoch=ep, samples=1024, clusters=4)
    for k, v in e.items():
        if k not in ("epoch", "samples", "clusters"):
            ev[k] = float(v)
    out.append(ev)
    out.append(dict(event="checkpoint", epoch=ep,
                    path="checkpoints/shapes/bs32_lr0.0003_ResNet18/checkpoint.safetensors"))
last = metrics[-1]
for s in range(1, 13):
    out.append(step(7, s, float(last["total_loss"]) * 0.98, float(last["instance_loss"]),
                    float(last["feature_loss"]), 81.4))
with open(os.path.join(run, "events.jsonl"), "w") as f:
    for e in out:
        f.write(json.dumps(e, separators=(",", ":")) + "\n")
with open(os.path.join(run, "train.log"), "w") as f:
    f.write("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in out[:3]))
print(len(out), "events")
