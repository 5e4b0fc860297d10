"""Base pretraining (loc3r-tiny): token label pooling, the recognition loss and head, the SynthRooms pretraining tasks
(free of spatial words), and fine-tuning a loc3r model from a loc3r base checkpoint."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from loc3r.core.geometry import VisionSegment, pool_token_labels, pool_token_points
from loc3r.objectives.recognition import token_category_loss

# --------------------------------------------------------------------------------------------- label pooling


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    h=st.integers(3, 20),
    w=st.integers(3, 20),
    grid_h=st.integers(1, 6),
    grid_w=st.integers(1, 6),
    num_classes=st.integers(2, 6),
)
def test_pool_token_labels_matches_point_pooling_of_one_hot_labels(seed, h, w, grid_h, grid_w, num_classes):
    """Each class's share in a token equals pool_token_points' mean of that class's indicator (same footprints)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(-1, num_classes + 1, size=(2, h, w))  # -1 and num_classes are unlabelled
    segments = [VisionSegment((0, 1), grid_h, grid_w)]
    dist, valid = pool_token_labels(labels, segments, num_classes, min_valid_fraction=0.0)
    labelled = (labels >= 0) & (labels < num_classes)
    np.testing.assert_allclose(dist[valid].sum(axis=1), 1.0, atol=1e-12)
    assert (dist[~valid] == 0).all()
    for c in range(num_classes):
        indicator = np.where(labelled, (labels == c).astype(float), np.nan)
        points = np.stack([indicator, np.zeros_like(indicator), np.zeros_like(indicator)], axis=-1)
        mean, ok = pool_token_points(points, segments, min_valid_fraction=1e-9)
        np.testing.assert_array_equal(ok, valid)
        np.testing.assert_allclose(dist[valid, c], mean[valid, 0], atol=1e-12)


def test_pool_token_labels_masks_sparse_tokens_and_extra_tokens():
    labels = -np.ones((1, 4, 4), dtype=np.int64)
    labels[0, 0, 0] = 1  # 1 of the 4 pixels of the top-left token of a 2x2 grid
    seg = [VisionSegment((0,), 2, 2, extra_tokens=1)]
    dist, valid = pool_token_labels(labels, seg, 3, min_valid_fraction=0.3)
    assert dist.shape == (5, 3) and not valid.any()
    dist, valid = pool_token_labels(labels, seg, 3, min_valid_fraction=0.25)
    assert valid.tolist() == [True, False, False, False, False] and dist[0].tolist() == [0.0, 1.0, 0.0]


# --------------------------------------------------------------------------------------------- recognition loss


def test_token_category_loss_is_cross_entropy_with_background_weights():
    logits = torch.randn(5, 4, requires_grad=True)
    target = torch.eye(4)[[0, 1, 2, 0, 3]]
    ce = torch.nn.functional.cross_entropy(logits, target.argmax(1), reduction="none")
    full = token_category_loss(logits, target)
    torch.testing.assert_close(full, ce.mean())
    weighted = token_category_loss(logits, target, background_weight=0.25)
    w = torch.tensor([0.25, 1, 1, 0.25, 1])
    torch.testing.assert_close(weighted, (ce * w).sum() / w.sum())
    masked = token_category_loss(logits, target, torch.tensor([False, True, False, False, False]))
    torch.testing.assert_close(masked, ce[1])
    none = token_category_loss(logits, target, torch.zeros(5, dtype=torch.bool))
    assert float(none.detach()) == 0.0 and none.requires_grad
    none.backward()
    assert torch.isfinite(logits.grad).all()


# --------------------------------------------------------------------------------------------- pretraining tasks


@pytest.fixture(scope="module")
def pretrain_root(tmp_path_factory) -> Path:
    from loc3r.synthrooms.writer import SynthSettings, generate_dataset

    root = tmp_path_factory.mktemp("pretrain")
    settings_ = SynthSettings(
        num_scenes=6,
        frames=4,
        width=48,
        height=48,
        seed=7,
        min_objects=6,
        max_objects=12,
        min_side=3.0,
        max_side=5.0,
        val_fraction=0.0,
        test_fraction=0.0,
        novel_view=False,
        situations_per_scene=0,
        vsi_questions_per_type=0,
        write_video=False,
    )
    generate_dataset(root, settings_, progress=False)
    return root


# Words that would leak spatial supervision into the base (positions, distances, directions, sizes).
SPATIAL = re.compile(
    r"\b(left|right|front|behind|back|near|far|next|close|closest|farthest|between|above|below|under|over|on|"
    r"facing|north|south|east|west|meters?|metres?|cm|distance|size|large|small|big|tall|long|wide|corner|centre|"
    r"center|middle|side|x|y|yaw|degrees?)\b",
    re.IGNORECASE,
)


def test_pretraining_tasks_have_no_spatial_words_and_follow_the_scan(pretrain_root):
    from loc3r.synthrooms.pretraining import PRETRAIN_TASKS, SynthPretrainDataset, recognition_classes

    ds = SynthPretrainDataset(pretrain_root, "train", 4)
    assert len(ds) == 6 * len(PRETRAIN_TASKS)
    texts = ds.texts()
    leaks = sorted({m.group(0) for t in texts for m in SPATIAL.finditer(t)})
    assert not leaks, f"spatial words in pretraining texts: {leaks}"
    answers: dict[str, list[str]] = {}
    for i in range(len(ds)):
        sample = ds[i]
        answers.setdefault(sample.task, []).append(sample.answer)
        assert sample.agent_position is None and sample.points is None  # no spatial targets of any kind
        assert sample.label_names == recognition_classes()
        scan = pretrain_root / "scans" / sample.scene_id
        meta = json.loads((scan / "meta_info.json").read_text())[sample.scene_id]
        first_seen = json.loads((scan / "scene.json").read_text())["first_seen_frame"]
        category = {b["instance_id"]: c for c, boxes in meta["object_bbox"].items() for b in boxes}
        if sample.task == "pretrain_objects":
            order = sorted((f, int(i)) for i, f in first_seen.items())
            expected = list(dict.fromkeys(category[iid] for _, iid in order))
            assert sample.answer == ", ".join(expected)
        # the pixel labels are the instance masks mapped to categories
        from PIL import Image

        inst = np.asarray(Image.open(scan / "instance" / f"{int(sample.frame_indices[0])}.png")).astype(int)
        names = np.array(sample.label_names)[sample.pixel_labels[0]]
        for iid in np.unique(inst):
            assert set(names[inst == iid]) == {"background" if iid == 0 else category[int(iid)]}
    assert set(answers["pretrain_presence"]) <= {"yes", "no"}
    assert all(a.isdigit() for a in answers["pretrain_count"])
    again = SynthPretrainDataset(pretrain_root, "train", 4)
    assert [again[i].answer for i in range(len(again))] == [ds[i].answer for i in range(len(ds))]


def test_pretraining_refuses_a_frame_count_other_than_the_rendered_one(pretrain_root):
    from loc3r.data.schema import SampleError
    from loc3r.synthrooms.pretraining import SynthPretrainDataset

    with pytest.raises(SampleError, match="--frames 8"):
        SynthPretrainDataset(pretrain_root, "train", 8)
    with pytest.raises(SampleError, match="tasks"):
        SynthPretrainDataset(pretrain_root, "train", 4, tasks=("objects", "where_am_i"))


# --------------------------------------------------------------------------------------------- model


def _tiny_recognition_model(texts: list[str]):
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration
    from loc3r.model.tokenizer import build_tiny_tokenizer
    from loc3r.synthrooms.pretraining import recognition_classes

    tokenizer = build_tiny_tokenizer(texts, 400, "qwen2_5_vl")
    return Loc3rForConditionalGeneration.tiny(
        "qwen2_5_vl",
        tokenizer,
        layout_objective=False,
        situation_objective=False,
        recognition_objective=True,
        recognition_classes=recognition_classes(),
    )


def test_recognition_objective_trains_the_tower_and_a_base_fine_tunes(pretrain_root, tmp_path):
    from loc3r.synthrooms.pretraining import SynthPretrainDataset

    torch.manual_seed(0)
    ds = SynthPretrainDataset(pretrain_root, "train", 4, tasks=("objects",))
    model = _tiny_recognition_model(ds.texts())
    batch = model.build_processor("train")([ds[i] for i in range(4)])
    assert batch["recognition_valid"].sum() > 0
    tower = model.vlm.model.visual  # the Qwen2.5-VL vision tower
    before = [p.detach().clone() for p in tower.parameters()]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        out = model(**batch)
        out.loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(out.losses["loss_rec"]))
    assert losses[-1] < 0.7 * losses[0]
    assert any(not torch.equal(a, b) for a, b in zip(before, tower.parameters(), strict=True))

    base_dir = tmp_path / "base"
    model.save_pretrained(base_dir)
    from loc3r.model.loading import load_model

    tuned = load_model(base_dir, objectives={"layout_objective": True, "situation_objective": True})
    assert tuned.recognition_head is None and tuned.layout_head is not None and tuned.position_head is not None
    base_state = model.state_dict()
    for name, value in tuned.state_dict().items():
        if name.startswith("vlm."):
            assert torch.equal(value, base_state[name]), name
    assert tuned.preprocessing == model.preprocessing


# --------------------------------------------------------------------------------------------- the shipped base


def test_shipped_base_verifies_and_a_changed_byte_is_named(tmp_path):
    import shutil

    from loc3r.apps.pretrained_base import BASE_DIR, BaseError, verify_base

    hashes = verify_base(BASE_DIR)
    assert set(hashes) >= {"model.safetensors", "config.json", "tokenizer.json", "MODEL_CARD.md"}
    copy = tmp_path / "base"
    shutil.copytree(BASE_DIR, copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(BaseError, match=r"model\.safetensors.*does not match SHA256SUMS.*rebuild"):
        verify_base(copy)
    (copy / "SHA256SUMS").unlink()
    with pytest.raises(BaseError, match="SHA256SUMS: missing"):
        verify_base(copy)


def test_shipped_base_recognises_with_the_real_model_class():
    from loc3r.apps.pretrained_base import BASE_DIR
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration

    base = Loc3rForConditionalGeneration.from_pretrained(BASE_DIR)
    assert type(base.vlm).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert base.config.recognition_objective and base.recognition_head is not None
    assert not base.config.layout_objective and not base.config.situation_objective
    assert all(torch.isfinite(p).all() for p in base.parameters())


# --------------------------------------------------------------------------------------------- estimated depth


def test_simulated_depth_error_moves_points_along_camera_rays():
    from loc3r.core.geometry import MONOCULAR_DEPTH_ERROR, GeometryError, simulate_depth_error

    rng = np.random.default_rng(0)
    poses = np.tile(np.eye(4), (3, 1, 1))
    poses[:, :3, 3] = rng.normal(size=(3, 3))
    points = rng.normal(size=(3, 16, 16, 3)) * 3
    points[0, 0, 0] = np.nan
    same = simulate_depth_error(points, poses, dict(MONOCULAR_DEPTH_ERROR), seed=5)
    np.testing.assert_array_equal(same, simulate_depth_error(points, poses, dict(MONOCULAR_DEPTH_ERROR), seed=5))
    assert np.isnan(same[0, 0, 0]).all()
    # scale only: every point of the clip moves along its ray by one common factor
    scale_only = {"scale_sigma": 0.2, "relative_sigma": 0.0, "grid": 4.0, "hole_fraction": 0.0}
    noisy = simulate_depth_error(points, poses, scale_only, seed=1)
    centres = poses[:, None, None, :3, 3]
    ratio = np.linalg.norm(noisy - centres, axis=-1) / np.linalg.norm(points - centres, axis=-1)
    finite = np.isfinite(ratio)
    assert np.ptp(ratio[finite]) < 1e-9 and abs(ratio[finite][0] - 1) > 1e-6
    cross = np.cross(noisy - centres, points - centres)
    assert np.nanmax(np.abs(cross)) < 1e-9  # same ray
    none = {"scale_sigma": 0.0, "relative_sigma": 0.0, "grid": 4.0, "hole_fraction": 0.0}
    np.testing.assert_allclose(simulate_depth_error(points, poses, none, seed=3), points, atol=1e-12)
    holes = simulate_depth_error(points, poses, {**none, "hole_fraction": 0.5, "grid": 8.0}, seed=3)
    assert 0.3 < np.isnan(holes[..., 0]).mean() < 0.7
    with pytest.raises(GeometryError, match="keys"):
        simulate_depth_error(points, poses, {"scale_sigma": 0.1}, seed=0)


def test_cue_injection_with_estimated_depth_changes_the_cues_not_the_layout_targets(clip_factory, tiny_tokenizer):
    from loc3r.core.geometry import MONOCULAR_DEPTH_ERROR
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration

    tokenizer = tiny_tokenizer("qwen2_5_vl")
    kwargs = {"layout_objective": True, "situation_objective": True, "cue_injection": True}
    exact = Loc3rForConditionalGeneration.tiny("qwen2_5_vl", tokenizer, **kwargs)
    estimated = Loc3rForConditionalGeneration.tiny(
        "qwen2_5_vl", tokenizer, cue_depth_error=dict(MONOCULAR_DEPTH_ERROR), **kwargs
    )
    sample = clip_factory()
    a = exact.build_processor("train")([sample])
    b = estimated.build_processor("train")([sample])
    torch.testing.assert_close(a["layout_targets"], b["layout_targets"])
    assert a["cue_valid"].sum() > 0 and not torch.allclose(a["cue_points"], b["cue_points"])
    again = estimated.build_processor("train")([sample])
    torch.testing.assert_close(again["cue_points"], b["cue_points"])  # deterministic per sample
