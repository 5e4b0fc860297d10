"""Determinism check for the objectives refactor (not committed): train a few demo variants 5 steps from the shipped
base and print the losses to full precision and a parameter hash; also a processed-batch hash."""
import dataclasses, hashlib, json, shutil, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
from loc3r.apps import demo
from loc3r.synthrooms.writer import generate_dataset

data = Path("/work/obj_det/synth")
if not (data / "index.json").exists():
    s = dataclasses.replace(demo.DEFAULT.data, num_scenes=6, situations_per_scene=6, seed=0, val_fraction=0.0)
    generate_dataset(data, s, workers=1, progress=False)
settings = dataclasses.replace(demo.DEFAULT, steps=4, batch_size=4, warmup_steps=2, progress=False, data_workers=0)
base = demo.resolve_base("loc3r-tiny")
variants = sys.argv[1:] or ["lm_only", "cue_injection", "loc3r", "loc3r_camera", "loc3r_mlp", "scratch_camera", "scratch_rec"]

def phash(model):
    h = hashlib.sha256()
    for n, p in model.state_dict().items():
        h.update(n.encode()); h.update(p.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]

for v in variants:
    out = Path(f"/work/obj_det/run-{v}")
    shutil.rmtree(out, ignore_errors=True)
    s = settings
    name = v
    if v == "loc3r_mlp":
        s, name = dataclasses.replace(settings, situation_head="mlp"), "loc3r"
    b = base
    if v.startswith("scratch"):
        b, name = None, "loc3r_camera"
    cfg = demo._recipe(data, out, name, s, 0, b)
    if v == "scratch_rec":
        from loc3r.synthrooms.pretraining import recognition_classes
        cfg.model.loc3r.update(recognition_objective=True, recognition_classes=recognition_classes(), recognition_background_weight=0.2)
    cfg.train.log_every = 1; cfg.train.save_every = 0
    from loc3r.train.recipe import train
    res = train(cfg)
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    print(f"== {v}")
    for l in lines:
        print(" ", {k: repr(val) for k, val in l.items() if "loss" in k or k == "train/grad_norm"})
    from loc3r.model.loading import load_model
    m = load_model(res.final_dir)
    print("  params", phash(m))
    # processed batch + eval forward
    from loc3r.train.recipe import _micro_batches  # noqa
    from loc3r.model.processing import Loc3rProcessor
    from loc3r.train import builders
    train_set, _ = builders.build_datasets(cfg)
    proc = m.build_processor(mode="train", num_frames=settings.frames)
    if True:
        samples = [train_set[i] for i in range(3)]
        b = proc(samples)
        h = hashlib.sha256()
        for k, t in sorted(b.items()):
            if isinstance(t, torch.Tensor):
                h.update(k.encode()); h.update(t.float().numpy().tobytes())
        print("  batch", h.hexdigest()[:16])
        with torch.no_grad():
            o = m(**b.to("cpu"))
        print("  eval", {k: repr(float(x)) for k, x in sorted(o.losses.items())})
        pe = m.build_processor(mode="eval", num_frames=settings.frames)
        preds = m.predict(pe(samples), max_new_tokens=6)
        h = hashlib.sha256()
        for pr in preds:
            h.update(repr((pr.answer, pr.answer_token_ids, pr.yaw_bev, pr.yaw_confidence, pr.extras)).encode())
            for a in (pr.position_bev, pr.position_sigma, pr.layout_mean, pr.layout_sigma, pr.yaw_probabilities, pr.position_world):
                if a is not None:
                    h.update(a.tobytes())
        print("  predict", h.hexdigest()[:16])
