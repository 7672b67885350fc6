#!/usr/bin/env bash
# The main job, from a fresh Debian/Ubuntu machine (as root): install everything, then deploy
# examples/node-express to a local sandbox machine and fetch the page it serves.
#   scripts/demo.sh [TARGET]          (default target: demo)
# Afterwards:  .venv/bin/lightfold status --target demo
#              .venv/bin/lightfold destroy --target demo --yes
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
target=${1:-demo}
lightfold=$PWD/.venv/bin/lightfold
app=${LIGHTFOLD_DEMO_DIR:-/var/tmp/lightfold-demo/node-express}
if [ ! -d "$app/.git" ]; then
    mkdir -p "$app"
    cp -r examples/node-express/. "$app/"
    git -C "$app" init -q -b main
    git -C "$app" add -A
    git -C "$app" -c user.name=demo -c user.email=demo@example.invalid commit -q -m "demo app"
fi
"$lightfold" deploy "$app" --target "$target" --provider local
ip=$("$lightfold" config show --target "$target" --json | python3 -c \
    'import json,sys; t=json.load(sys.stdin)["targets"]; print(next(iter(t.values()))["provider_config"]["local"]["ip"])')
echo "--- http://$ip/ answers:"
curl -fsS "http://$ip/"
