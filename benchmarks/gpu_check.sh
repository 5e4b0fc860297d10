#!/usr/bin/env bash
# loc3r GPU check (<= 8 minutes on one H100 / H200): 7B-shaped and 2B-shaped models of REAL configurations with
# random weights, bf16, sdpa attention (ATTN=flash_attention_2 if installed), gradient checkpointing, 32 frames at
# 384 px, a few AdamW steps of the real recipe on one card (LoRA for the 7B, full fine-tune for the 2B), base vs
# loc3r (layout + situation objectives + camera prior from poses). Prints step time, MFU, peak memory, the
# objectives' overhead and predict latency base vs loc3r, then the dry-run estimate of the same recipe for
# comparison with the measured peak. Record the tables in benchmarks/RESULTS.md (machine, date, this command).
#
#   bash benchmarks/gpu_check.sh            # PY=path/to/python, ATTN=..., PEAK_TFLOPS=989 (H100/H200 SXM bf16 dense)
#   bash benchmarks/gpu_check.sh --cpu-smoke   # the same code path on the CPU with tiny sizes (tests the script only)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
ATTN=${ATTN:-sdpa}
PEAK=${PEAK_TFLOPS:-989}
SMOKE=()
SEVEN_B=configs/backbones/qwen2_5_vl_7b
TWO_B=configs/backbones/qwen3_vl_2b
if [[ "${1:-}" == "--cpu-smoke" ]]; then
  SMOKE=(--cpu-smoke)
  SEVEN_B=${SMOKE_CONFIG:-benchmarks/tiny_qwen3_vl}   # shipped tiny Qwen3-VL config (SMOKE_CONFIG=DIR for another)
  TWO_B=$SEVEN_B
else
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
"$PY" benchmarks/bench_scale.py gpu --config "$SEVEN_B" --finetune lora --frames 32 --size 384 --steps 4 \
  --attn "$ATTN" --peak-tflops "$PEAK" "${SMOKE[@]}"
"$PY" benchmarks/bench_scale.py gpu --config "$TWO_B" --finetune full --frames 32 --size 384 --steps 4 \
  --attn "$ATTN" --peak-tflops "$PEAK" "${SMOKE[@]}"
if [[ ${#SMOKE[@]} -eq 0 ]]; then
  "$PY" -m loc3r.cli train configs/single_gpu/qwen3_vl_2b_full.yaml --dry-run \
    --set model.init=random --set model.config_file="$TWO_B"
fi
