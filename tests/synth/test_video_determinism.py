"""SynthRooms ``video.mp4``: the same frames always give the same bytes (issue 11 part 5).

Before the fix, x264's AVX-512 routines made about one encode in ten differ on an AVX-512 CPU when other clips
were encoded in between (the case of ``loc3r synth``), so the clip is encoded many times, interleaved with
other clips. On a CPU without AVX-512 the cap is a no-op and the test checks plain repeatability.
"""

from __future__ import annotations

import hashlib

import numpy as np

from loc3r.synthrooms.writer import _write_video, x264_asm_without_avx512


def _rendered_clip() -> np.ndarray:
    """8 rendered 64x64 frames of one SynthRooms room (the content that exposed the variation)."""
    from loc3r.synthrooms.writer import SynthSettings, plan_jobs, render_scene

    settings = SynthSettings(num_scenes=12, frames=8, width=64, height=64, seed=3)
    job = next(j for j in plan_jobs(settings) if j.scene_id == "synth00005_00")
    return render_scene(job, settings).rgb


def test_same_frames_same_bytes(tmp_path):
    clip = _rendered_clip()
    noise = np.random.default_rng(2)
    digests = set()
    for _ in range(30):
        _write_video(tmp_path / "other.mp4", noise.integers(0, 255, (8, 64, 64, 3), dtype=np.uint8))
        _write_video(tmp_path / "clip.mp4", clip)
        digests.add(hashlib.sha256((tmp_path / "clip.mp4").read_bytes()).hexdigest())
    assert len(digests) == 1


def test_asm_cap_lists_sets_up_to_avx2_only():
    info = "processor: 0\nflags\t: fpu sse sse2 pni ssse3 sse4_1 sse4_2 avx fma bmi1 bmi2 avx2 avx512f avx512bw\n"
    assert x264_asm_without_avx512(info) == "MMX2,SSE,SSE2,SSE3,SSSE3,SSE4.1,SSE4.2,AVX,FMA3,BMI1,BMI2,AVX2"
    assert x264_asm_without_avx512("flags\t: sse sse2 avx avx2\n") is None  # no AVX-512: x264 detects itself
    assert x264_asm_without_avx512("") is None
