#!/usr/bin/env bash
# Every throughput figure and one learning run on whatever accelerator JAX sees; each script
# prints its section (the device in its heading) and keeps it in runs/bench/sections.md.
# Sized for a GPU: about 8 minutes there; on a CPU pass smaller sizes by hand instead.
#
#   bash benchmarks/gpu.sh            # from the repository root, agentic-jax installed
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import jax; print('devices:', jax.devices())"
# Environment steps/s against gymnax CartPole in the same run, 4,096 to 1M episodes.
python benchmarks/env_throughput.py --envs CartPole-v1 Tally-v0 KBLookup-v0 \
  --sizes 4096 65536 1048576
# Tokens/s of the default GRPO update, 512 to 16,384 episodes (8 per task).
python benchmarks/train_throughput.py --tasks 64 256 1024 2048
# Cold against warm start (the persistent compilation cache).
python benchmarks/warm_start.py
# Time to a trained default agent (the curve, wall seconds with compiling).
python benchmarks/learning.py default
