"""Camera pose prior (DESIGN.md §2, issue 2 part 4): one token per frame, placed before that frame's vision tokens.

An input, not a loss: its "targets" are the per-frame features of :func:`camera_targets` (``camera_features
[T, F]`` + whether the sample's prompt holds its ``<Cam>`` tokens), its module the projector ``f_cam``; its config
fields (``CONFIG``): ``camera_prior`` (``None`` = off, ``"poses"``, ``"file"``, ``"sample"``),
``camera_feature_dim`` and ``camera_prior_dropout``.

A *provider* turns a :class:`~loc3r.data.schema.ClipSample` into one feature vector per frame
(``[T, feature_dim] float32``); :class:`CameraPriorProjector` (the paper's ``f_cam``, a 2-layer MLP) maps it
to the LLM width. The model places the projected token in front of the frame's vision tokens.

Providers:

* :class:`PoseCameraProvider` — camera poses that come with the video (AR devices, robot odometry,
  ScanNet), encoded **relative to the clip's BEV anchor frame** by :func:`pose_camera_features`, so the
  token is invariant to any gravity-preserving rigid motion of the world (the same invariance as the
  layout and situation targets).
* :class:`FileCameraProvider` — vectors computed offline by an external 3D foundation model (e.g. CUT3R
  camera tokens). **Per clip** (the paper's setting: CUT3R runs on the sampled clip, 32 frames):
  ``<root>/<scene_id>.clips.safetensors`` holds ``frame_indices [K, T]`` (int64) and ``key [K, T, F]`` for K
  clips of the scene; a sample gets the clip whose indices equal its ``frame_indices`` exactly (write with
  :func:`write_clip_features`). **Per video** (fallback when a scene has no clips file): ``<root>/<scene_id>
  .safetensors`` / ``.npz`` (``[N_video_frames, F]``), rows picked by ``sample.frame_indices`` — tokens of a
  recurrent model run on the whole video carry state from frames the model never sees, so prefer per-clip
  files. Never unpickles.
* :class:`SampleFeatureProvider` — the ``camera_features`` a loader already put on the sample.

Build one from a config with :func:`build_camera_provider` (``None`` = camera prior off).

**Camera-prior dropout** (ours, DESIGN.md §9: one model that runs with or without poses): a *dropped* sample's prompt
has no ``<Cam>`` token and its frames ``camera_valid = False`` — exactly the prompt of a plain RGB video. In training
:func:`camera_prior_dropped` decides per sample (rate ``Loc3rConfig.camera_prior_dropout``); at inference the
processor uses the prior when the provider can give it (:func:`camera_features_available`) unless told otherwise.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from loc3r.core.geometry import AnchorFrame, GeometryError, anchor_frame, validate_poses
from loc3r.data.schema import ClipSample, SampleError
from loc3r.objectives.common import TwoLayerMLP, init_small

CAMERA_PRIOR_KINDS = (None, "poses", "file", "sample")
#: the config fields of the camera prior and their defaults (taken by
#: :class:`loc3r.model.configuration_loc3r.Loc3rConfig`; ``camera_feature_dim`` becomes 9 for ``"poses"``)
CONFIG = {"camera_prior": None, "camera_feature_dim": None, "camera_prior_dropout": 0.0}

POSE_FEATURE_DIM = 9
"""Camera centre in BEV (3, height relative to the first camera) + first two columns of the camera-to-BEV
rotation (6D rotation representation)."""


def pose_camera_features(poses: np.ndarray, anchor: AnchorFrame) -> np.ndarray:
    """Encode camera-to-world poses ``[T, 4, 4]`` relative to the clip's anchor frame → ``[T, 9] float32``.

    With ``P_bev = anchor.world_to_bev @ P_world = [[R, c], [0, 1]]`` the feature of frame t is
    ``[c_x, c_y, c_z - c_z(frame 0), R[:, 0], R[:, 1]]``: the camera centre in BEV metres, its height taken
    relative to the clip's first camera, and the continuous 6D rotation representation (Zhou et al.,
    CVPR 2019; ``R[:, 2] = R[:, 0] × R[:, 1]`` is implied). The height is relative because the floor height
    of a world frame is not known in general (ScanNet, SLAM and AR frames put z = 0 anywhere).

    Invariance: the anchor frame moves with the world, so a gravity-preserving rigid motion (rotation about
    z by any angle + any 3D translation) applied to all poses leaves every feature unchanged.

    Raises:
        GeometryError: poses that are not finite rigid ``[T, 4, 4]`` transforms.
    """
    bev = anchor.poses_to_bev(validate_poses(poses, "poses"))
    centre = bev[:, :3, 3].copy()
    centre[:, 2] -= centre[0, 2]
    rot6 = np.concatenate([bev[:, :3, 0], bev[:, :3, 1]], axis=-1)
    return np.concatenate([centre, rot6], axis=-1).astype(np.float32)


@runtime_checkable
class CameraFeatureProvider(Protocol):
    """Gives one camera feature vector per frame of a clip."""

    feature_dim: int

    def __call__(self, sample: ClipSample, anchor: AnchorFrame | None) -> np.ndarray:
        """``[T, feature_dim] float32`` for the T frames of ``sample`` (``anchor`` = the clip's BEV frame)."""
        ...


def _where(sample: ClipSample) -> str:
    return f"sample {sample.sample_id!r} (scene {sample.scene_id!r})"


class PoseCameraProvider:
    """Camera token from the poses that come with the video: :func:`pose_camera_features` (``feature_dim = 9``)."""

    feature_dim: int = POSE_FEATURE_DIM

    def __call__(self, sample: ClipSample, anchor: AnchorFrame | None) -> np.ndarray:
        where = _where(sample)
        if sample.poses is None:
            raise SampleError(
                f"{where}: field 'poses' is missing, but the camera prior 'poses' needs camera-to-world poses "
                "(use the 'file' provider or turn the camera prior off)"
            )
        poses, num_frames = np.asarray(sample.poses), len(sample.frames)
        if poses.ndim != 3 or poses.shape[0] != num_frames:
            raise SampleError(f"{where}: field 'poses' must be [T={num_frames}, 4, 4], got shape {poses.shape}")
        try:
            if anchor is None:
                anchor = anchor_frame(poses[0], f"{where}: field 'poses'[0]")
            return pose_camera_features(poses, anchor)
        except GeometryError as err:
            raise SampleError(f"{where}: field 'poses': {err}") from err


CLIPS_SUFFIX = ".clips.safetensors"


def write_clip_features(
    root: str | Path, scene_id: str, frame_indices: np.ndarray, features: np.ndarray, key: str = "camera_tokens"
) -> Path:
    """Add (or replace) one clip's features in ``<root>/<scene_id>.clips.safetensors`` atomically.

    ``frame_indices [T]``: the exact source-frame indices of the clip (``ClipSample.frame_indices``, e.g. of a
    prepared cache); ``features [T, F]``: one vector per frame from the 3D foundation model run on exactly those
    frames, in that order. Every clip of a scene must share T and F.
    """
    from safetensors.numpy import load_file

    from loc3r.data.cache import _atomic_save

    idx = np.asarray(frame_indices, dtype=np.int64).reshape(-1)
    feats = np.asarray(features, dtype=np.float32)
    if feats.ndim != 2 or feats.shape[0] != idx.shape[0]:
        raise SampleError(f"scene {scene_id!r}: features must be [T={idx.shape[0]}, F], got {feats.shape}")
    if not np.isfinite(feats).all():
        raise SampleError(f"scene {scene_id!r}: features have non-finite values")
    path = Path(root) / f"{scene_id}{CLIPS_SUFFIX}"
    all_idx, all_feats = idx[None], feats[None]
    if path.is_file():
        old = load_file(str(path))
        if key not in old or "frame_indices" not in old:
            raise SampleError(f"{path}: needs tensors 'frame_indices' and {key!r} (found {sorted(old)})")
        if old[key].shape[1:] != feats.shape:
            raise SampleError(f"{path}: holds clips of shape {old[key].shape[1:]}, cannot add one of {feats.shape}")
        keep = ~np.all(old["frame_indices"] == idx[None], axis=1)
        all_idx = np.concatenate([old["frame_indices"][keep], idx[None]])
        all_feats = np.concatenate([old[key][keep].astype(np.float32), feats[None]])
    _atomic_save({"frame_indices": all_idx, key: all_feats}, {}, path)  # creates the directory
    return path


class FileCameraProvider:
    """Camera features computed offline (e.g. CUT3R camera tokens), per clip or per video (file layouts: see the
    module docstring). A sample whose frames were not exported is an error naming the file and the field (never a
    silent fall back to other frames); without ``frame_indices`` a per-video file must have exactly T rows. Files
    are cached per scene (LRU of ``max_cached_scenes``). ``feature_dim`` is given, or read from the first file under
    ``root`` (header only for safetensors) so the projector can be built before any sample is seen; every file is
    checked against it.
    """

    def __init__(
        self, root: str | Path, key: str = "camera_tokens", feature_dim: int | None = None, max_cached_scenes: int = 64
    ) -> None:
        self.root = Path(root)
        self.key = key
        self.max_cached_scenes = max_cached_scenes
        #: scene id -> (path, per-video rows); ("clips", scene id) -> (frame_indices [K, T], features [K, T, F])
        self._cache: OrderedDict[Any, tuple[Any, np.ndarray]] = OrderedDict()
        self._feature_dim = feature_dim

    @property
    def feature_dim(self) -> int:
        if self._feature_dim is None:
            self._feature_dim = self._infer_feature_dim()
        return self._feature_dim

    def _infer_feature_dim(self) -> int:
        if not self.root.is_dir():
            raise SampleError(f"camera feature directory {str(self.root)!r} does not exist")
        files = sorted(self.root.glob("*.safetensors")) + sorted(self.root.glob("*.npz"))
        clips = [f for f in files if f.name.endswith(CLIPS_SUFFIX)]
        if clips:
            shape = self._safetensor(clips[0], shape_only=True)
            if len(shape) != 3:
                raise SampleError(f"{clips[0]}: field {self.key!r} must be [K, T, F], got shape {tuple(shape)}")
            return int(shape[2])
        if not files:
            raise SampleError(
                f"camera feature directory {str(self.root)!r} has no *.safetensors or *.npz file to read "
                "the feature size from; pass feature_dim explicitly"
            )
        path = files[0]
        shape = self._safetensor(path, shape_only=True) if path.suffix == ".safetensors" else self._read(path).shape
        if len(shape) != 2:
            raise SampleError(f"{path}: field {self.key!r} must be [N_frames, F], got shape {tuple(shape)}")
        return int(shape[1])

    def _cached(self, key: Any, load: Any) -> Any:
        """``load()`` once per ``key`` (least recently used of ``max_cached_scenes`` entries kept)."""
        if key in self._cache:
            self._cache.move_to_end(key)
        else:
            self._cache[key] = load()
            while len(self._cache) > self.max_cached_scenes:
                self._cache.popitem(last=False)
        return self._cache[key]

    def path_for(self, scene_id: str) -> Path:
        """The feature file of ``scene_id`` (safetensors preferred); raises naming both candidates if absent."""
        if not scene_id or "/" in scene_id or "\\" in scene_id or scene_id in {".", ".."}:
            raise SampleError(f"scene id {scene_id!r} cannot name a camera feature file")
        candidates = [self.root / f"{scene_id}.safetensors", self.root / f"{scene_id}.npz"]
        for path in candidates:
            if path.is_file():
                return path
        raise SampleError(
            f"camera features of scene {scene_id!r} not found: neither {candidates[0]} nor {candidates[1]} exists"
        )

    def _safetensor(self, path: Path, shape_only: bool = False) -> Any:
        """Tensor ``key`` of a safetensors file as float32 numpy, or its shape (header only)."""
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                if self.key not in f.keys():  # noqa: SIM118 - safe_open has keys(), not __contains__
                    raise SampleError(f"{path}: no tensor {self.key!r} (found {sorted(f.keys())})")
                return f.get_slice(self.key).get_shape() if shape_only else f.get_tensor(self.key).float().numpy()
        except SafetensorError as err:
            raise SampleError(f"{path}: not a readable safetensors file ({err})") from err

    def _read(self, path: Path) -> np.ndarray:
        if path.suffix == ".safetensors":
            return self._safetensor(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                if self.key not in data.files:
                    raise SampleError(f"{path}: no array {self.key!r} (found {sorted(data.files)})")
                array = data[self.key]
        except SampleError:
            raise
        except ValueError as err:
            raise SampleError(
                f"{path}: field {self.key!r} cannot be loaded without unpickling (object arrays are refused) "
                f"or the file is corrupt ({err})"
            ) from err
        except (OSError, EOFError) as err:
            raise SampleError(f"{path}: not a readable npz file ({err})") from err
        if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
            raise SampleError(f"{path}: field {self.key!r} must be a real numeric array, got dtype {array.dtype}")
        return array.astype(np.float32)

    def _video_rows(self, scene_id: str) -> tuple[Path, np.ndarray]:
        path = self.path_for(scene_id)
        array = self._read(path)
        if array.ndim != 2:
            raise SampleError(f"{path}: field {self.key!r} must be [N_frames, F], got shape {array.shape}")
        if array.shape[1] != self.feature_dim:
            raise SampleError(
                f"{path}: field {self.key!r} has feature size {array.shape[1]}, expected {self.feature_dim} "
                "(all scenes must share one feature size)"
            )
        return path, array

    def _clip_table(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            data = load_file(str(path))
        except SafetensorError as err:
            raise SampleError(f"{path}: not a readable safetensors file ({err})") from err
        if self.key not in data or "frame_indices" not in data:
            raise SampleError(f"{path}: needs tensors 'frame_indices' and {self.key!r} (found {sorted(data)})")
        feats, idx = data[self.key].astype(np.float32), data["frame_indices"]
        if feats.ndim != 3 or idx.shape != feats.shape[:2] or feats.shape[2] != self.feature_dim:
            raise SampleError(
                f"{path}: field {self.key!r} must be [K, T, F={self.feature_dim}] with frame_indices [K, T], got "
                f"{feats.shape} and {idx.shape}"
            )
        return idx, feats

    def _clip_features(self, sample: ClipSample, path: Path) -> np.ndarray:
        where = _where(sample)
        idx, feats = self._cached(("clips", sample.scene_id), lambda: self._clip_table(path))
        if sample.frame_indices is None:
            raise SampleError(f"{where}: field 'frame_indices' is missing; per-clip features ({path}) need it")
        wanted = np.asarray(sample.frame_indices, dtype=np.int64).reshape(-1)
        match = np.flatnonzero(np.all(idx == wanted[None], axis=1)) if idx.shape[1] == len(wanted) else []
        if len(match) == 0:
            raise SampleError(
                f"{where}: field 'frame_indices' {wanted.tolist()} matches none of the {idx.shape[0]} clips in {path} "
                "(features must come from a run on exactly the sampled frames: export this clip)"
            )
        out = feats[int(match[-1])]
        if not np.isfinite(out).all():
            raise SampleError(f"{where}: {path} field {self.key!r} has non-finite values for this clip")
        return np.ascontiguousarray(out)

    def __call__(self, sample: ClipSample, anchor: AnchorFrame | None = None) -> np.ndarray:
        """``[T, F] float32``: the scene's per-clip file when it exists, else the per-video rows."""
        where = _where(sample)
        num_frames = len(sample.frames)
        if sample.scene_id and "/" not in sample.scene_id:
            clips = self.root / f"{sample.scene_id}{CLIPS_SUFFIX}"
            if clips.is_file():
                return self._clip_features(sample, clips)
        path, array = self._cached(sample.scene_id, lambda: self._video_rows(sample.scene_id))
        if sample.frame_indices is None:
            if array.shape[0] != num_frames:
                raise SampleError(
                    f"{where}: field 'frame_indices' is missing and {path} has {array.shape[0]} rows for "
                    f"{num_frames} frames; the loader must record which video frames were sampled"
                )
            rows = np.arange(num_frames)
        else:
            rows = np.asarray(sample.frame_indices)
            if rows.ndim != 1 or rows.shape[0] != num_frames or not np.issubdtype(rows.dtype, np.integer):
                raise SampleError(
                    f"{where}: field 'frame_indices' must be {num_frames} integers, got {rows.dtype} {rows.shape}"
                )
            bad = (rows < 0) | (rows >= array.shape[0])
            if bad.any():
                raise SampleError(
                    f"{where}: field 'frame_indices' has index {int(rows[bad][0])} outside the "
                    f"{array.shape[0]} rows of {path}"
                )
        out = array[rows]
        finite = np.isfinite(out).all(axis=1)
        if not finite.all():
            bad_row = int(rows[np.flatnonzero(~finite)[0]])
            raise SampleError(f"{where}: {path} field {self.key!r} row {bad_row} has non-finite values")
        return np.ascontiguousarray(out, dtype=np.float32)


class SampleFeatureProvider:
    """The per-frame ``camera_features [T, F]`` a data loader already attached to the sample."""

    def __init__(self, feature_dim: int) -> None:
        self.feature_dim = feature_dim

    def __call__(self, sample: ClipSample, anchor: AnchorFrame | None = None) -> np.ndarray:
        where = _where(sample)
        if sample.camera_features is None:
            raise SampleError(f"{where}: field 'camera_features' is missing but the camera prior 'sample' needs it")
        feats, num_frames = np.asarray(sample.camera_features), len(sample.frames)
        if feats.shape != (num_frames, self.feature_dim):  # finite: ClipSample.validate
            raise SampleError(
                f"{where}: field 'camera_features' must be [T={num_frames}, F={self.feature_dim}], got {feats.shape}"
            )
        return feats.astype(np.float32)


def build_camera_provider(
    kind: str | None, root: str | None = None, key: str = "camera_tokens", feature_dim: int | None = None
) -> CameraFeatureProvider | None:
    """Provider from config: ``None`` (prior off), ``"poses"``, ``"file"`` (needs ``root``) or ``"sample"``
    (needs ``feature_dim``)."""
    if kind is None or kind == "none":
        return None
    if kind == "poses":
        return PoseCameraProvider()
    if kind == "file":
        if not root:
            raise ValueError("camera prior 'file' needs a root directory of <scene_id>.safetensors/.npz files")
        return FileCameraProvider(root, key=key, feature_dim=feature_dim)
    if kind == "sample":  # feature_dim: Loc3rConfig requires it
        return SampleFeatureProvider(feature_dim)
    raise ValueError(f"unknown camera prior kind {kind!r}; expected None, 'poses', 'file' or 'sample'")


def camera_prior_dropped(rate: float, seed: int, sample: ClipSample) -> bool:
    """Whether training drops this sample's camera-prior tokens (camera-prior dropout, our addition).

    A pure function of ``(rate, seed, scene_id, sample_id)``: ``u = blake2b(seed, scene_id, sample_id) / 2**64`` is
    uniform in [0, 1) over samples and the sample is dropped when ``u < rate``. So ``rate = 0`` never drops (the
    paper's training, bit for bit), ``rate = 1`` always drops, the decision does not depend on DataLoader workers or
    on where a resumed run restarts, and a sample keeps its decision in every epoch (the clips of a room still appear
    both ways, through their other questions and situations).
    """
    if rate <= 0.0:
        return False
    if rate >= 1.0:
        return True
    key = f"{int(seed)}\0{sample.scene_id}\0{sample.sample_id}".encode()
    u = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") / 2.0**64
    return u < rate


def camera_features_available(provider: CameraFeatureProvider | None, sample: ClipSample) -> bool:
    """Whether ``provider`` can give ``sample`` its camera features without an error for a missing input: poses
    for :class:`PoseCameraProvider`, ``camera_features`` for :class:`SampleFeatureProvider`; a
    :class:`FileCameraProvider` is taken as able (a scene missing from its directory stays an error naming the
    file); no provider cannot."""
    if provider is None:
        return False
    if isinstance(provider, PoseCameraProvider):
        return sample.poses is not None
    if isinstance(provider, SampleFeatureProvider):
        return sample.camera_features is not None
    return True


class CameraPriorProjector(TwoLayerMLP):
    """``f_cam``: ``Linear(F, D) → GELU → Linear(D, D)`` mapping a frame's camera feature to one LLM token.

    Computes in the dtype of its own parameters (the input is cast to it), so it follows the model's dtype;
    the caller places the result before the frame's vision tokens.
    """

    def __init__(self, feature_dim: int, hidden_size: int) -> None:
        super().__init__(feature_dim, hidden_size, hidden_size)
        self.feature_dim = feature_dim
        self.hidden_size = hidden_size
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_small(self.fc1, self.fc2)

    def forward(self, features: Tensor) -> Tensor:
        """``features [..., F]`` → ``[..., hidden_size]`` in the projector's parameter dtype."""
        if features.ndim == 0 or features.shape[-1] != self.feature_dim:
            raise ValueError(
                f"CameraPriorProjector: expected features [..., {self.feature_dim}], got {tuple(features.shape)}"
            )
        return super().forward(features)


def build_projector(config: Any, hidden_size: int) -> CameraPriorProjector | None:
    """``f_cam`` when the camera prior is on."""
    on = config.camera_prior is not None
    return CameraPriorProjector(int(config.camera_feature_dim), hidden_size) if on else None


def camera_targets(
    provider: CameraFeatureProvider | None,
    sample: ClipSample,
    anchor: AnchorFrame | None,
    expected: tuple,
    used: bool,
    kind: str,
    where: str,
) -> tuple[np.ndarray, bool]:
    """``(features [T, F] float32, used)`` of one sample: zeros when its camera tokens are left out (dropped, no
    poses); else the provider's features, checked for shape and finiteness (errors name the sample)."""
    if not used:
        return np.zeros(expected, dtype=np.float32), False
    if provider is None:
        raise SampleError(f"{where}: the camera prior {kind!r} has no feature source (give camera_root)")
    feats = np.asarray(provider(sample, anchor), dtype=np.float32)  # finite: each provider checks its source
    if feats.shape != expected:
        raise SampleError(f"{where}: camera features must be {list(expected)}, got {list(feats.shape)}")
    return feats, True


def batch_camera(targets: list[tuple[np.ndarray, bool]], feature_dim: int) -> dict[str, Tensor]:
    """``camera_features [B, T, F]`` and ``camera_valid [B, T]`` (False on the frames of a sample without tokens)."""
    max_t = max(feats.shape[0] for feats, _ in targets)
    feats_out = torch.zeros((len(targets), max_t, feature_dim), dtype=torch.float32)
    valid = torch.zeros((len(targets), max_t), dtype=torch.bool)
    for b, (feats, used) in enumerate(targets):
        feats_out[b, : feats.shape[0]] = torch.from_numpy(feats)
        valid[b, : feats.shape[0]] = used
    return {"camera_features": feats_out, "camera_valid": valid}
