"""Shared fixtures and helpers of the whole suite (tests/<package>/ mirrors src/loc3r/<package>/).

Helpers used by more than one test module live here and are imported as ``from conftest import NAME`` (pytest
puts this directory on ``sys.path``); fixtures are found by pytest. No mocks: everything is real data.

Tiny ClipSamples come from simple synthetic geometry:

A box room ``[-2, 2] x [-2.5, 2.5] x [0, 2.6]`` (metres, z up) is "rendered" analytically: every pixel ray of a
pinhole camera (OpenCV axes, camera-to-world pose) is intersected with the six faces of the box; the exit distance
gives the metric depth, the 3D point and, through a per-face colour and a 0.5 m checkerboard, the RGB frame. So the
frames, the per-pixel world points and the poses are exactly consistent, as they are in ScanNet-style data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from loc3r.data.schema import ClipSample

#: The repository root and the checked-in fixtures (real released SQA3D records).
REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SQA3D_FIXTURES = FIXTURES / "sqa3d"

# The suite runs as `pytest -n 2` on 2 cores: with torch's default of one intra-op thread per core, two workers
# oversubscribe the CPU and OpenMP's spin-waiting makes tiny-model steps 10-30x slower (measured: an overfit test
# took 0.5 s to 19 s). Tiny models gain nothing from intra-op parallelism, so tests use one thread per process.
torch.set_num_threads(1)

ROOM_MIN = np.array([-2.0, -2.5, 0.0])
ROOM_MAX = np.array([2.0, 2.5, 2.6])
FACE_COLOURS = np.array(
    [[200, 60, 60], [60, 200, 60], [60, 60, 200], [200, 200, 60], [150, 120, 90], [230, 230, 230]], dtype=np.float64
)  # -x, +x, -y, +y, floor, ceiling

CORPUS = [
    "I am standing in the room.",
    "I am sitting on the bed facing the window.",
    "What is on my left? The red wall.",
    "How far is the door from me? 1.5 meters.",
    "Which way should I turn to reach the table? left right behind in front",
    "How many chairs are in front of me? 0 1 2 3 4 5 6 7 8 9",
    "the green wall the blue wall the floor the ceiling yes no",
]


def look_pose(position: np.ndarray, yaw: float, pitch: float = 0.0) -> np.ndarray:
    """Camera-to-world pose (OpenCV axes) at ``position`` looking along ``yaw`` (about z), tilted down by ``pitch``."""
    forward = np.array([np.cos(yaw) * np.cos(pitch), np.sin(yaw) * np.cos(pitch), -np.sin(pitch)])
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, position
    return pose


def intrinsics(size: int, fov_deg: float = 70.0) -> np.ndarray:
    f = 0.5 * size / np.tan(np.deg2rad(fov_deg) / 2)
    return np.array([[f, 0.0, size / 2], [0.0, f, size / 2], [0.0, 0.0, 1.0]])


def render_box_room(pose: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact ray cast of the box room: ``(rgb [size, size, 3] uint8, world points [size, size, 3])``."""
    k = intrinsics(size)
    v, u = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="ij")
    dirs_cam = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], axis=-1)
    dirs = dirs_cam @ pose[:3, :3].T
    origin = pose[:3, 3]
    with np.errstate(divide="ignore"):
        t_hi = (ROOM_MAX - origin) / dirs
        t_lo = (ROOM_MIN - origin) / dirs
    t_exit = np.where(dirs > 0, t_hi, np.where(dirs < 0, t_lo, np.inf))  # [H, W, 3] per axis
    axis = np.argmin(t_exit, axis=-1)
    t = np.take_along_axis(t_exit, axis[..., None], axis=-1)[..., 0]  # = camera depth (dirs_cam z = 1)
    points = origin + t[..., None] * dirs
    positive = np.take_along_axis(dirs, axis[..., None], axis=-1)[..., 0] > 0
    face = axis * 2 + positive.astype(int)  # 0:-x 1:+x 2:-y 3:+y 4:floor 5:ceiling
    colour = FACE_COLOURS[face]
    checker = (np.floor(points * 2.0).sum(axis=-1) % 2 == 0)[..., None]
    rgb = np.clip(colour * np.where(checker, 1.0, 0.6), 0, 255).astype(np.uint8)
    return rgb, points


def make_clip(
    num_frames: int = 8,
    size: int = 112,
    points_size: int = 28,
    sample_id: str = "room-0",
    question: str = "What is on my left?",
    answer: str | None = "The red wall.",
    situation_text: str | None = "I am sitting on the bed facing the window.",
    agent_position: tuple[float, float, float] | None = (1.0, -0.5, 0.0),
    agent_yaw: float | None = 2.0,
    with_points: bool = True,
    with_poses: bool = True,
    start_yaw: float = 0.3,
) -> ClipSample:
    """A clip of the box room: the camera walks on a circle of radius 0.8 m at 1.5 m height, turning around."""
    frames, points, poses = [], [], []
    for i in range(num_frames):
        angle = 2 * np.pi * i / max(num_frames, 1)
        position = np.array([0.8 * np.cos(angle), 0.8 * np.sin(angle), 1.5])
        pose = look_pose(position, start_yaw + 1.5 * angle, pitch=0.25)
        rgb, _ = render_box_room(pose, size)
        _, pts = render_box_room(pose, points_size)
        frames.append(rgb)
        points.append(pts)
        poses.append(pose)
    return ClipSample(
        sample_id=sample_id,
        scene_id="box-room",
        task="synth_situated",
        frames=np.stack(frames),
        question=question,
        answer=answer,
        answers=[answer] if answer else [],
        situation_text=situation_text,
        agent_position=None if agent_position is None else np.asarray(agent_position, dtype=np.float64),
        agent_yaw=agent_yaw,
        poses=np.stack(poses) if with_poses else None,
        points=np.stack(points).astype(np.float32) if with_points else None,
    )


@pytest.fixture
def clip_factory() -> Callable[..., ClipSample]:
    """``clip_factory(**kwargs) -> ClipSample`` of the synthetic box room (see :func:`make_clip`)."""
    return make_clip


_TOKENIZERS: dict[str, object] = {}


@pytest.fixture
def tiny_tokenizer() -> Callable[[str], object]:
    """``tiny_tokenizer(backbone)``: a byte-level BPE trained on a small corpus (cached per backbone)."""
    from loc3r.model.tokenizer import build_tiny_tokenizer

    def get(backbone: str):
        if backbone not in _TOKENIZERS:
            _TOKENIZERS[backbone] = build_tiny_tokenizer(CORPUS * 4, 512, backbone)
        return _TOKENIZERS[backbone]

    return get


# ------------------------------------------------------------------ random rigid motions (geometry, camera prior)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniform random proper rotation (QR of a Gaussian matrix, sign-fixed)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def gravity_motion(angle: float, translation: np.ndarray) -> np.ndarray:
    """4x4 rigid motion that keeps gravity: rotation about z by ``angle`` then ``translation``."""
    c, s = math.cos(angle), math.sin(angle)
    m = np.eye(4)
    m[:3, :3] = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
    m[:3, 3] = translation
    return m


# ------------------------------------------------------------------ a ScanNet-like scene (data loaders)

COLOR_HW = (48, 64)
DEPTH_HW = (24, 32)
K_COLOR = np.array([[60.0, 0.0, 32.0], [0.0, 60.0, 24.0], [0.0, 0.0, 1.0]])
K_DEPTH = np.array([[30.0, 0.0, 16.0], [0.0, 30.0, 12.0], [0.0, 0.0, 1.0]])  # same camera, half resolution


def rot_z(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def axis_alignment(theta: float = 0.7, t: tuple[float, float, float] = (1.5, -2.0, 0.1)) -> np.ndarray:
    a = np.eye(4)
    a[:3, :3] = rot_z(theta)
    a[:3, 3] = t
    return a


def camera_pose(i: int, n: int) -> np.ndarray:
    """A camera walking on a circle at 1.4 m height, looking roughly horizontally (OpenCV axes)."""
    yaw = 2 * math.pi * i / max(n, 1)
    forward = np.array([math.cos(yaw), math.sin(yaw), -0.2])
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2] = right, down, forward
    pose[:3, 3] = [2.0 + math.cos(yaw), 1.0 + math.sin(yaw), 1.4]
    return pose


def make_frames(n: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    colors, depths, poses = [], [], []
    yy, xx = np.mgrid[0 : COLOR_HW[0], 0 : COLOR_HW[1]]
    for i in range(n):
        img = np.stack([(xx * 4 + i * 20) % 256, (yy * 5) % 256, np.full_like(xx, 40 * i % 256)], -1)
        colors.append(img.astype(np.uint8))
        depth = rng.uniform(0.8, 4.0, DEPTH_HW)
        depth[0, :3] = 0.0  # missing measurements
        depths.append(depth)
        poses.append(camera_pose(i, n))
    return colors, depths, poses


# ------------------------------------------------------------------ the SQA3D fixture scenes' metadata

#: bbox centres of the two fixture scenes (SQA3D positions are relative to them).
SQA3D_CENTRES = {"scene0015_00": np.array([2.5, 3.0, 1.2]), "scene0025_00": np.array([-1.0, 4.0, 1.4])}


def sqa3d_meta_table() -> object:
    """The :class:`~loc3r.data.scannet.SceneMetaTable` of the SQA3D fixture scenes (one axis-aligned)."""
    from loc3r.data.scannet import SceneMeta, SceneMetaTable

    return SceneMetaTable(
        {
            "scene0015_00": SceneMeta(
                "scene0015_00", axis_alignment(0.4, (0.3, -1.0, 0.05)), SQA3D_CENTRES["scene0015_00"]
            ),
            "scene0025_00": SceneMeta("scene0025_00", None, SQA3D_CENTRES["scene0025_00"]),
        }
    )


# ------------------------------------------------------------------ tiny models


def tiny_model(tiny_tokenizer: Callable[[str], object], backbone: str, **kwargs: object) -> object:
    """A tiny random ``Loc3rForConditionalGeneration`` of ``backbone`` with the suite's tokenizer."""
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration

    return Loc3rForConditionalGeneration.tiny(backbone, tiny_tokenizer(backbone), **kwargs)


def save_tiny_checkpoint(path: Path, corpus: list[str], **flags: object) -> Path:
    """A tiny random Qwen2.5-VL-class loc3r model (tokenizer trained on ``corpus``) saved to ``path``."""
    from loc3r.model.modeling_loc3r import Loc3rForConditionalGeneration
    from loc3r.model.tokenizer import build_tiny_tokenizer

    tok = build_tiny_tokenizer(corpus, vocab_size=300, backbone="qwen2_5_vl")
    Loc3rForConditionalGeneration.tiny("qwen2_5_vl", tok, seed=0, **flags).save_pretrained(path)
    return path


# ------------------------------------------------------------------ LLaVA-NeXT llava_qwen checkpoints (loc3r import)
# A tiny checkpoint in the ORIGINAL LLaVA-NeXT key layout (tests/model/test_import_llava_qwen.py, and the stand-in
# imported checkpoint of docs/reproduce.md's test): HF LlavaOnevision weights saved under llava_qwen names.

_QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_LLAVA_CORPUS = ["What is on my left? The red wall.", "I am standing in the room.", "How far is the door? 1.5 meters."]
_LLAVA_HIDDEN = 64
#: head tensors of a Loc3R-VLM-like checkpoint, under names loc3r does not know: name -> shape
LLAVA_HEAD_KEYS = {
    "model.loc_heads.pos.0.weight": (_LLAVA_HIDDEN, _LLAVA_HIDDEN),
    "model.loc_heads.pos.0.bias": (_LLAVA_HIDDEN,),
    "model.loc_heads.pos.2.weight": (4, _LLAVA_HIDDEN),
    "model.loc_heads.pos.2.bias": (4,),
    "model.loc_heads.ori.0.weight": (_LLAVA_HIDDEN, _LLAVA_HIDDEN),
    "model.loc_heads.ori.0.bias": (_LLAVA_HIDDEN,),
    "model.loc_heads.ori.2.weight": (36, _LLAVA_HIDDEN),
    "model.loc_heads.ori.2.bias": (36,),
    "model.loc_heads.bev.weight": (4, _LLAVA_HIDDEN),
    "model.loc_heads.bev.bias": (4,),
}
LLAVA_HEAD_MAP = [
    r"model\.loc_heads\.pos\.0\.=position_head.mlp.fc1.",
    r"model\.loc_heads\.pos\.2\.=position_head.mlp.fc2.",
    r"model\.loc_heads\.ori\.0\.=orientation_head.mlp.fc1.",
    r"model\.loc_heads\.ori\.2\.=orientation_head.mlp.fc2.",
    r"model\.loc_heads\.bev\.(weight|bias)=layout_head.proj.\1",
]


def _qwen_like_tokenizer(path: Path) -> int:
    """A Qwen-like byte-level BPE tokenizer (chat specials only, no <video>) saved to ``path``; returns its size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=_QWEN_SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(_LLAVA_CORPUS * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.save_pretrained(path)
    return len(fast)


def _llava_key(key: str) -> str:
    """HF LlavaOnevision key -> LLaVA-NeXT llava_qwen key (the layout of the original checkpoints)."""
    if key.startswith("model.language_model."):
        return "model." + key[len("model.language_model.") :]
    if key.startswith("model.vision_tower."):
        rel = key[len("model.vision_tower.") :].removeprefix("vision_model.")
        return "model.vision_tower.vision_tower.vision_model." + rel
    if key.startswith("model.multi_modal_projector.linear_1."):
        return "model.mm_projector.0." + key.rsplit(".", 1)[1]
    if key.startswith("model.multi_modal_projector.linear_2."):
        return "model.mm_projector.2." + key.rsplit(".", 1)[1]
    assert key in ("model.image_newline", "lm_head.weight"), key
    return key


def write_llava_qwen_checkpoint(
    root: Path,
    *,
    tie: bool = False,
    dtype: torch.dtype = torch.float32,
    spare_rows: int = 16,
    heads: bool = True,
    layout: dict | None = None,
) -> tuple[Path, object, dict[str, torch.Tensor]]:
    """A tiny llava_qwen checkpoint in ``root``: ``(dir, HF reference model, {llava key: tensor})``."""
    import json

    from safetensors.torch import save_file
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

    root.mkdir(parents=True)
    n_tok = _qwen_like_tokenizer(root)
    rows = n_tok + spare_rows  # Qwen pads its embedding beyond the tokenizer
    text = dict(model_type="qwen2", vocab_size=rows, hidden_size=_LLAVA_HIDDEN, intermediate_size=128,
                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                rms_norm_eps=1e-6, rope_theta=50000.0, tie_word_embeddings=tie)  # fmt: skip
    vision = dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=2, image_size=112, patch_size=14, vision_use_head=False)  # fmt: skip
    # the ids loc3r's import gives <video> / <image>: the first tokens it adds after the tokenizer's own
    config = LlavaOnevisionConfig(text_config=text, vision_config=vision, vision_feature_select_strategy="full",
                                  vision_feature_layer=-1, video_token_index=n_tok, image_token_index=n_tok + 1,
                                  tie_word_embeddings=tie)  # fmt: skip
    torch.manual_seed(7)
    reference = LlavaOnevisionForConditionalGeneration(config).eval()
    with torch.no_grad():
        reference.model.image_newline.normal_()
    reference.to(dtype)
    tensors = {}
    for key, value in reference.state_dict().items():
        if key == "lm_head.weight" and tie:
            continue  # tied checkpoints (Qwen2-0.5B based) do not store the LM head
        tensors[_llava_key(key)] = value.detach().clone().contiguous()
    if heads:
        gen = torch.Generator().manual_seed(3)
        for key, shape in LLAVA_HEAD_KEYS.items():
            tensors[key] = (torch.randn(shape, generator=gen) * 0.1).to(dtype)
    # three shards + the index, as LLaVA-NeXT's save_pretrained writes them
    keys = sorted(tensors)
    weight_map = {}
    for s in range(3):
        name = f"model-{s + 1:05d}-of-00003.safetensors"
        part = {k: tensors[k] for k in keys[s::3]}
        save_file(part, str(root / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, name))
    (root / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    tower = root / "siglip_tower"  # mm_vision_tower as a local directory holding the tower's config
    tower.mkdir()
    (tower / "config.json").write_text(json.dumps({**vision, "layer_norm_eps": 1e-6}))
    llava = {
        "architectures": ["LlavaQwenForCausalLM"], "model_type": "llava_qwen", "hidden_size": _LLAVA_HIDDEN,
        "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "vocab_size": rows, "max_position_embeddings": 4096, "rms_norm_eps": 1e-6, "rope_theta": 50000.0,
        "hidden_act": "silu", "tie_word_embeddings": tie, "use_sliding_window": False,
        "torch_dtype": str(dtype).replace("torch.", ""), "mm_vision_tower": "siglip_tower",
        "mm_projector_type": "mlp2x_gelu", "mm_hidden_size": 32, "mm_vision_select_layer": -2,
        "mm_vision_select_feature": "patch", "mm_patch_merge_type": "spatial_unpad",
        "image_aspect_ratio": "anyres_max_9", "mm_newline_position": "one_token", "mm_spatial_pool_mode": "bilinear",
        "mm_spatial_pool_stride": 2, "add_faster_video": False, **(layout or {}),
    }  # fmt: skip
    (root / "config.json").write_text(json.dumps(llava))
    return root, reference, tensors
