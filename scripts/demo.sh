#!/bin/sh
# demo.sh: the main job on the built-in data: train a beta-VAE (beta 4) on dSprites for a few
# minutes into runs/demo and draw what it learned. Usage: sh scripts/demo.sh path/to/knobs
set -e
K=$1
rm -rf runs/demo
"$K" train --model betavae --beta 4 --data dsprites --steps 6000 --seed 1 --out runs/demo
"$K" traverse --model runs/demo --index 123456 --range -2:2:11 --out runs/demo/traversal.png
"$K" traverse --model runs/demo --index 123456 --range -2:2:11 --out runs/demo/traversal.gif >/dev/null
"$K" info runs/demo
echo
echo "runs/demo/traversal.png: one row per latent (most informative first), the latent swept from -2 to 2;"
echo "runs/demo/traversal.gif, reconstructions.png and samples.png are beside it."
