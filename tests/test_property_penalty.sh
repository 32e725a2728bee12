#!/bin/sh
# test_property_penalty.sh: the property penalty from the command line: `knobs train --help`
# lists --property-penalty and --property-weight; a tiny penalised run logs the "property" term
# and records both settings in config.json; a family without kn_vae_forward is refused (exit 1)
# and a missing head file is a runtime error naming it (exit 2).
# Usage: sh tests/test_property_penalty.sh BUILD
BUILD=${1:-build}
K="$PWD/$BUILD/knobs"
H="$PWD/tests/ref/head_reg.safetensors" # a head on 5 latents (tests/ref/make_head_ref.py)
T=$(mktemp -d /tmp/knobs-penalty-XXXXXX)
. "$(dirname "$0")/lib.sh"

expect 0 "--property-penalty" "$K" train --help
expect 0 "--property-weight" "$K" train --help
expect 1 "does not support the property penalty" "$K" train --model gvae --property-penalty "$H" --property-weight 1 --out "$T/weak"
expect 1 "property_weight" "$K" train --property-weight 2 --out "$T/noweight"
expect 2 "nosuch.safetensors" "$K" train --arch mlp --property-penalty "$T/nosuch.safetensors" --property-weight 1 --out "$T/missing"
expect 0 "" "$K" train --arch mlp --hidden 16 --latents 5 --batch 8 --steps 4 --log-every 2 --threads 2 \
  --property-penalty "$H" --property-weight 0.5 --out "$T/run" --quiet
head -1 "$T/run/log.csv" | grep -q ',property$' && ok || bad "log.csv header lacks the property term: $(head -1 "$T/run/log.csv")"
[ "$(wc -l < "$T/run/log.csv")" -ge 3 ] && ok || bad "log.csv has no rows"
grep -q '"property_weight":[[:space:]]*0.5' "$T/run/config.json" && ok || bad "config.json lacks property_weight 0.5"
grep -q "\"property_penalty\":[[:space:]]*\"$H\"" "$T/run/config.json" && ok || bad "config.json lacks property_penalty"

rm -rf "$T"
echo "$P passed, $F failed"
[ "$F" = 0 ]
