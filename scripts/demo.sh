#!/bin/sh
# demo.sh: the main job on the built-in data: train a beta-VAE (beta 4) on dSprites for a few
# minutes into runs/demo and draw what it learned. Usage: sh scripts/demo.sh path/to/knobs
# Adam lr 1e-3 instead of the reference's 1e-4: at 5000 steps (about 6 minutes on 2 cores) the
# reference rate has only begun to separate position; 1e-3 gives rows for x, y and scale
# (README, "The demo"). The traversal starts from a centred ellipse (grid index 389648).
set -e
K=$1
rm -rf runs/demo
"$K" train --model betavae --beta 4 --data dsprites --steps 5000 --lr 1e-3 --seed 1 --out runs/demo
"$K" traverse --model runs/demo --index 389648 --range -2:2:11 --out runs/demo/traversal.png
"$K" traverse --model runs/demo --index 389648 --range -2:2:11 --out runs/demo/traversal.gif >/dev/null
"$K" info runs/demo
echo
echo "runs/demo/traversal.png: one row per latent (most informative first), the latent swept from -2 to 2;"
echo "runs/demo/traversal.gif, reconstructions.png and samples.png are beside it."
