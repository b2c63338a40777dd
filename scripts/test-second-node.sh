#!/usr/bin/env bash
# The suite's second Node: the newest Node 22 LTS we promise (package.json `engines`), next to the
# machine's own. `npm test` calls this last; it runs only when CI=true (or with --force), because it
# costs minutes: better-sqlite3 is a native module built for one Node ABI, so the second Node
# needs its own install, compiled from source (only the npm registry is reachable here; the Node
# package there ships the headers node-gyp needs).
#
# What it does, in a copy of the checkout (the working tree's files, as git sees them):
#   1. fetch Node from the npm registry (`npm exec --package=node@...`, cached by npm);
#   2. `npm ci` with that Node first on PATH, failing on any EBADENGINE line;
#   3. on that Node: what touches the native module and the runtime most (the SQLite store's
#      conformance suite, the refresh protocol, library mode, encryption at rest), the packaging
#      test (npm pack, install from the tarballs, serve, client, Temporal, library mode, plain
#      node) and the engines test (npm ci --dry-run on this Node).
# Cost, measured on this 2-core machine while shared (load average 12): fetching Node 1 s (9 s
# uncached), npm ci with the better-sqlite3 compile 257 s (the compile alone ~60 s of CPU); the
# whole core folder plus packaging took 473 s more, too much next to the main suite, hence the
# files below (about 120 s of test time at that load).
set -euo pipefail

NODE_VERSION="${TOKENWARDEN_SECOND_NODE:-22.23.3}"
TESTS=(
  packages/core/test/sqlite-store.test.ts
  packages/core/test/refresh.test.ts
  packages/core/test/embedded.test.ts
  packages/core/test/at-rest.test.ts
  packages/server/test/packaging.test.ts
  packages/server/test/engines.test.ts
)

if [[ "${CI:-}" != "true" && "${1:-}" != "--force" ]]; then
  echo "second Node (${NODE_VERSION}): skipped outside CI; run it with: scripts/test-second-node.sh --force"
  exit 0
fi

repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/tw-node${NODE_VERSION%%.*}-XXXXXX")"
trap 'rm -rf "$work"' EXIT
# Embedded Postgres runs as another user, who must be able to enter the copy.
chmod 755 "$work"

started=$SECONDS
node_bin="$(npm exec --yes --package="node@${NODE_VERSION}" -- node -p process.execPath)"
# The `node` package puts the binary and the headers in node-<platform>-<arch> beside it.
node_home="$(dirname "$node_bin")/../node_modules/$("$node_bin" -p '`node-${process.platform}-${process.arch}`')"
echo "second Node: $("$node_bin" --version) from the npm registry ($((SECONDS - started)) s)"

(cd "$repo" && git ls-files -z --cached --others --exclude-standard) |
  (cd "$repo" && xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' _) |
  (cd "$repo" && xargs -0 cp --parents -t "$work")

cd "$work"
export PATH="$(dirname "$node_bin"):$PATH"
export npm_config_nodedir="$node_home"
started=$SECONDS
npm ci --prefer-offline --no-audit --no-fund 2>&1 | tee npm-ci.log
if grep -q EBADENGINE npm-ci.log; then
  echo "second Node: npm ci printed EBADENGINE (above)" >&2
  exit 1
fi
echo "second Node: npm ci, better-sqlite3 compiled ($((SECONDS - started)) s)"

started=$SECONDS
# None of these files uses Temporal: an address stops the global setup from fetching the CLI
# into the copy and starting a server nobody calls.
TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-127.0.0.1:1}" npx vitest run "${TESTS[@]}"
echo "second Node: ${TESTS[*]} ($((SECONDS - started)) s)"
