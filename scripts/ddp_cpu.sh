#!/usr/bin/env bash
# docs/RESULTS.md, "Training in several processes (torchrun)": one process against two on one 2-core CPU.
# 1) the same model: 4 epochs of gen_type 3 on the sample, plain and under torchrun (each in a fresh data folder,
#    the second on a copy of the first's sample and pose cache); 2) throughput, gen_type 3 and the GAN.
# On a 2-core CPU: several minutes (run time not recorded); load average printed with the figures.
set -euo pipefail
cd "$(dirname "$0")/.."

one=$(mktemp -d) two=$(mktemp -d)
DEEPDANCE_DATA="$one" python GenVanillaNN.py --epochs 4
cp -r "$one/sample" "$one/cache" "$two/"
DEEPDANCE_DATA="$two" torchrun --standalone --nproc_per_node=2 GenVanillaNN.py --epochs 4

python -m bench.ddp --repeat 3          # gen_type 3, global batch 32, 1x1 / 2 processes / 1x2 threads, 3 repeats
python -m bench.ddp --gan               # gen_type 4 (BCE / image, netG from scratch), once
