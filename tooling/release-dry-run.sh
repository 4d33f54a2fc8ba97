#!/usr/bin/env bash
# Release dry run: proves that what `changeset publish` would ship installs and works for a consumer.
#
# On a scratch copy of the working tree (no node_modules, dist or .git):
#   1. `changeset version` applies the pending changesets (config and changesets are valid);
#   2. check-deps runs again on the bumped versions (internal ranges still match);
#   3. every public packages/* workspace is built (tsc -b) and packed (npm pack);
#   4. a throwaway consumer project installs the tarballs (external deps from the registry),
#      imports each package and each subpath export and checks their exports at runtime, composes a
#      media server from the installed packages (upload + authenticated download on 127.0.0.1), and
#      type-checks a .ts file that imports each of those entry points (tsc --noEmit, declarations included).
# Packages are discovered, so new ones are covered without editing this script.
# Quiet on success (one line per package); on failure prints the failing step's log and exits 1.
# Set KEEP_DRY_RUN=1 to keep the scratch directory for debugging.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/hsmedia-release-dry-run.XXXXXX")"
REPO="$WORK/repo"
TARBALLS="$WORK/tarballs"
CONSUMER="$WORK/consumer"
LOG="$WORK/step.log"
TSC=(node "$ROOT/node_modules/typescript/bin/tsc")
START_SECONDS=$SECONDS

cleanup() {
  if [[ "${KEEP_DRY_RUN:-}" == 1 ]]; then
    echo "release-dry-run: kept $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

fail() {
  echo "release-dry-run: FAILED: $1" >&2
  if [[ -s "$LOG" ]]; then
    echo "---- last lines of the step's output ----" >&2
    tail -n 120 "$LOG" >&2
  fi
  exit 1
}

# Runs a command with its output captured; a failure shows the output.
quietly() {
  local what="$1"
  shift
  "$@" >"$LOG" 2>&1 || fail "$what"
}

# ---------------------------------------------------------------------------
# 1. Scratch copy of the working tree, wired to the installed dependencies.
# ---------------------------------------------------------------------------
mkdir -p "$REPO" "$TARBALLS" "$CONSUMER"
EXCLUDES=(node_modules dist .git .turbo .bench-out '*.tsbuildinfo')
if command -v rsync >/dev/null 2>&1; then
  quietly "copy the working tree" rsync -a "${EXCLUDES[@]/#/--exclude=}" "$ROOT/" "$REPO/"
else
  quietly "copy the working tree" sh -c 'cd "$1" && shift 2 && tar -cf - "$@" . | tar -xf - -C "$0"' \
    "$REPO" "$ROOT" x "${EXCLUDES[@]/#/--exclude=}"
fi

[[ -d "$ROOT/node_modules" ]] || fail "no node_modules in $ROOT: run npm ci first"

# A real node_modules directory of links to the installed packages, except that
# @hsmedia/* links point at the copy's workspaces (the originals point at $ROOT).
mkdir -p "$REPO/node_modules/@hsmedia"
for entry in "$ROOT"/node_modules/* "$ROOT"/node_modules/.bin; do
  [[ "$(basename "$entry")" == "@hsmedia" ]] && continue
  ln -s "$entry" "$REPO/node_modules/$(basename "$entry")"
done

# name <TAB> dir <TAB> version <TAB> private, for every workspace of the copy.
list_workspaces() {
  node --input-type=module -e '
    import { discoverWorkspaces } from "'"$REPO"'/tooling/check-deps.mjs";
    for (const ws of discoverWorkspaces(process.argv[1])) {
      console.log([ws.name, ws.dir, ws.version, ws.isPrivate ? "private" : "public"].join("\t"));
    }' "$REPO"
}
while IFS=$'\t' read -r name dir _version _visibility; do
  ln -s "$REPO/$dir" "$REPO/node_modules/$name"
  # A workspace-local node_modules (version conflicts) is linked as is.
  [[ -d "$ROOT/$dir/node_modules" ]] && ln -s "$ROOT/$dir/node_modules" "$REPO/$dir/node_modules"
done < <(list_workspaces)

declare -A OLD_VERSION
while IFS=$'\t' read -r name _dir version _visibility; do
  OLD_VERSION[$name]=$version
done < <(list_workspaces)

# ---------------------------------------------------------------------------
# 2. Apply the pending changesets and re-check the graph with the new versions.
# ---------------------------------------------------------------------------
PENDING=$(find "$REPO/.changeset" -maxdepth 1 -name '*.md' ! -name README.md | wc -l)
(cd "$REPO" && quietly "changeset version (.changeset/config.json or a pending changeset is invalid)" \
  node node_modules/@changesets/cli/bin.js version)
quietly "check-deps after changeset version" node "$REPO/tooling/check-deps.mjs" --root "$REPO"

PUBLIC_DIRS=()
PUBLIC_NAMES=()
declare -A NEW_VERSION
while IFS=$'\t' read -r name dir version visibility; do
  NEW_VERSION[$name]=$version
  if [[ "$visibility" == public && "$dir" == packages/* ]]; then
    PUBLIC_DIRS+=("$dir")
    PUBLIC_NAMES+=("$name")
  fi
done < <(list_workspaces)
((${#PUBLIC_DIRS[@]} > 0)) || fail "no public packages found under packages/"

# ---------------------------------------------------------------------------
# 3. Build and pack every public package.
# ---------------------------------------------------------------------------
(cd "$REPO" && quietly "tsc -b of the public packages" "${TSC[@]}" -b "${PUBLIC_DIRS[@]}")

declare -A PACK_SUMMARY
for i in "${!PUBLIC_DIRS[@]}"; do
  dir=${PUBLIC_DIRS[$i]}
  name=${PUBLIC_NAMES[$i]}
  (cd "$REPO/$dir" && quietly "npm pack $name" sh -c 'npm pack --json --pack-destination "$1" >"$2"' sh "$TARBALLS" "$WORK/pack.json")
  # Every export target must be in the tarball, with declarations; tests must not be.
  PACK_SUMMARY[$name]=$(node --input-type=module -e '
    import { readFileSync } from "node:fs";
    const [reportFile, manifestFile] = process.argv.slice(1);
    const [report] = JSON.parse(readFileSync(reportFile, "utf8"));
    const manifest = JSON.parse(readFileSync(manifestFile, "utf8"));
    const files = new Set(report.files.map((file) => file.path));
    const problems = [];
    const targets = (value) => typeof value === "string" ? [value] : Object.values(value ?? {}).flatMap(targets);
    for (const target of targets(manifest.exports)) {
      if (!files.has(target.replace(/^\.\//, ""))) problems.push(`export target ${target} is not in the tarball`);
    }
    for (const required of ["package.json", "dist/index.js", "dist/index.d.ts", "README.md"]) {
      if (!files.has(required)) problems.push(`${required} is missing`);
    }
    for (const file of files) {
      if (/\.(test|spec)\.[cm]?[jt]s$/.test(file)) problems.push(`test file ${file} is packed`);
    }
    if (problems.length) { console.error(problems.join("\n")); process.exit(1); }
    console.log(`${(report.size / 1024).toFixed(1)} kB, ${report.entryCount} files`);
  ' "$WORK/pack.json" "$REPO/$dir/package.json" 2>"$WORK/pack-check.log") || { cp "$WORK/pack-check.log" "$LOG"; fail "tarball of $name"; }
done

# ---------------------------------------------------------------------------
# 4. A consumer project: install the tarballs, import everything, type-check.
# ---------------------------------------------------------------------------
cat >"$CONSUMER/package.json" <<'JSON'
{ "name": "hsmedia-release-dry-run-consumer", "version": "0.0.0", "private": true, "type": "module" }
JSON
cat >"$CONSUMER/tsconfig.json" <<'JSON'
{
  "compilerOptions": {
    "target": "es2023",
    "lib": ["es2023"],
    "module": "nodenext",
    "moduleResolution": "nodenext",
    "types": ["node"],
    "strict": true,
    "exactOptionalPropertyTypes": true,
    "noUncheckedIndexedAccess": true,
    "skipLibCheck": false,
    "noEmit": true
  },
  "files": ["check-types.ts"]
}
JSON

# Install scripts are skipped: native modules (better-sqlite3) reuse the repo's build below
# instead of compiling for minutes. Koa and its types are what a Koa consumer adds itself.
(cd "$CONSUMER" && quietly "npm install of the tarballs" \
  npm install --no-audit --no-fund --prefer-offline --ignore-scripts --loglevel=error \
  "$TARBALLS"/*.tgz koa@^3 @koa/router@^15 @types/koa@^3 "@types/node@^20")

# Every @hsmedia/* in the consumer must come from our tarballs, never from the registry.
quietly "origin of the installed @hsmedia packages" node --input-type=module -e '
  import { readFileSync } from "node:fs";
  const lock = JSON.parse(readFileSync(process.argv[1], "utf8"));
  const wrong = Object.entries(lock.packages)
    .filter(([where]) => /(^|\/)node_modules\/@hsmedia\//.test(where))
    .filter(([, entry]) => !String(entry.resolved ?? "").startsWith("file:"))
    .map(([where, entry]) => `${where} resolved to ${entry.resolved ?? entry.version}`);
  if (wrong.length) { console.error(`not installed from the tarballs:\n${wrong.join("\n")}`); process.exit(1); }
' "$CONSUMER/node_modules/.package-lock.json"

# Packages with install scripts (native builds such as better-sqlite3): when the repo has the same
# version installed, its copy (with the build output) is overlaid; otherwise npm rebuilds it.
while IFS=$'\t' read -r module_rel wanted; do
  source_dir="$ROOT/node_modules/$module_rel"
  have=$(node -p 'try { require(process.argv[1]).version } catch { "" }' "$source_dir/package.json")
  if [[ "$wanted" == "$have" ]]; then
    cp -R "$source_dir/." "$CONSUMER/node_modules/$module_rel/"
  else
    (cd "$CONSUMER" && quietly "npm rebuild $module_rel" npm rebuild --foreground-scripts "$module_rel")
  fi
done < <(node --input-type=module -e '
  import { existsSync, readFileSync, readdirSync } from "node:fs";
  import path from "node:path";
  const top = process.argv[1];
  const names = readdirSync(top).filter((name) => !name.startsWith("."))
    .flatMap((name) => name.startsWith("@") ? readdirSync(path.join(top, name)).map((inner) => `${name}/${inner}`) : [name]);
  for (const name of names) {
    const manifestPath = path.join(top, name, "package.json");
    if (!existsSync(manifestPath)) continue;
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    const scripts = manifest.scripts ?? {};
    const builds = scripts.preinstall || scripts.install || scripts.postinstall || existsSync(path.join(top, name, "binding.gyp"));
    if (builds) console.log(`${name}\t${manifest.version}`);
  }
' "$CONSUMER/node_modules")

# Exports a consumer relies on (checked when the package or subpath exists); every package, and
# every subpath export of it (`@hsmedia/media-core/memory`), must also export something, and the
# package must expose its package.json with the version that was packed.
cat >"$CONSUMER/check-runtime.mjs" <<'JS'
const KEY_EXPORTS = {
  '@hsmedia/errors': ['MatrixError', 'errors', 'ContentTooLargeError'],
  '@hsmedia/multipart': [],
  '@hsmedia/media-core': ['parseMxcUri', 'contentDispositionFor'],
  '@hsmedia/media-core/memory': ['MemoryMetadataStore', 'MemoryBlobStore'],
  '@hsmedia/store-fs': ['FsBlobStore'],
  '@hsmedia/store-s3': ['S3BlobStore', 'createS3Client', 'S3StoreError'],
  '@hsmedia/store-sqlite': ['createSqliteMetadataStore'],
  '@hsmedia/client-auth': ['createClientAuth', 'StaticTokenVerifier', 'WhoamiTokenVerifier'],
  '@hsmedia/media-routes': ['createMediaRouters', 'mountMediaRoutes'],
  '@hsmedia/conformance': ['describeBlobStore'],
};
/** Imports one entry point and checks its exports; gives their names. */
async function checkEntry(specifier) {
  const module = await import(specifier);
  const names = Object.keys(module);
  if (names.length === 0) throw new Error(`${specifier} exports nothing`);
  const missing = (KEY_EXPORTS[specifier] ?? []).filter((key) => module[key] === undefined);
  if (missing.length) throw new Error(`${specifier} is missing exports: ${missing.join(', ')}`);
  return names;
}
/** The subpath export keys of a manifest (`./memory`), without patterns and package.json. */
function subpathsOf(manifest) {
  const exports = manifest.exports;
  if (exports === null || typeof exports !== 'object') return [];
  return Object.keys(exports).filter((key) => key.startsWith('./') && key !== './package.json' && !key.includes('*'));
}
const [expectedJson] = process.argv.slice(2);
const expected = JSON.parse(expectedJson);
let failed = false;
for (const [name, version] of Object.entries(expected)) {
  try {
    const names = await checkEntry(name);
    const { default: manifest } = await import(`${name}/package.json`, { with: { type: 'json' } });
    if (manifest.version !== version) throw new Error(`package.json says ${manifest.version}, packed ${version}`);
    const subpaths = [];
    for (const key of subpathsOf(manifest)) {
      subpaths.push(`${key.slice(2)} ${(await checkEntry(name + key.slice(1))).length}`);
    }
    console.log(`${name}\t${names.length}${subpaths.length ? ` (${subpaths.join(', ')})` : ''}`);
  } catch (error) {
    failed = true;
    console.error(`${name}: ${error instanceof Error ? error.stack : String(error)}`);
  }
}
if (failed) process.exit(1);
JS

# End to end through the installed tarballs: compose a media server from the packages (when they
# are all published), upload and download over 127.0.0.1. Proves peers, native modules and the
# runtime wiring work outside the monorepo.
cat >"$CONSUMER/check-compose.mjs" <<'JS'
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClientAuth, StaticTokenVerifier } from '@hsmedia/client-auth';
import { MediaService } from '@hsmedia/media-core';
import { mountMediaRoutes } from '@hsmedia/media-routes';
import { FsBlobStore } from '@hsmedia/store-fs';
import { createSqliteMetadataStore } from '@hsmedia/store-sqlite';
import Koa from 'koa';

const dir = await mkdtemp(path.join(tmpdir(), 'hsmedia-consumer-'));
const metadata = await createSqliteMetadataStore({ path: path.join(dir, 'media.db') });
const media = new MediaService({
  serverName: 'consumer.localhost',
  blobs: new FsBlobStore({ root: path.join(dir, 'blobs') }),
  metadata,
  maxUploadBytes: 1024 * 1024,
});
const app = new Koa();
mountMediaRoutes(app, {
  media,
  authenticate: createClientAuth({ verifier: new StaticTokenVerifier({ 'consumer-token': '@c:consumer.localhost' }) }),
});
const server = createServer(app.callback());
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${server.address().port}`;
const auth = { Authorization: 'Bearer consumer-token' };
try {
  const uploaded = await fetch(`${base}/_matrix/media/v3/upload?filename=a.txt`, {
    method: 'POST', headers: { ...auth, 'Content-Type': 'text/plain' }, body: 'consumer bytes',
  });
  const { content_uri: uri } = await uploaded.json();
  if (uploaded.status !== 200 || !uri) throw new Error(`upload answered ${uploaded.status}`);
  const downloaded = await fetch(`${base}/_matrix/client/v1/media/download/${uri.slice(6)}`, { headers: auth });
  const text = await downloaded.text();
  if (downloaded.status !== 200 || text !== 'consumer bytes') throw new Error(`download answered ${downloaded.status}: ${text}`);
  const anonymous = await fetch(`${base}/_matrix/client/v1/media/download/${uri.slice(6)}`);
  if (anonymous.status !== 401) throw new Error(`anonymous download answered ${anonymous.status}`);
} finally {
  server.close();
  await media.close();
  await metadata.close();
  await rm(dir, { recursive: true, force: true });
}
JS
COMPOSE_PACKAGES=(@hsmedia/client-auth @hsmedia/media-core @hsmedia/media-routes @hsmedia/store-fs @hsmedia/store-sqlite)
COMPOSE_READY=1
for needed in "${COMPOSE_PACKAGES[@]}"; do
  [[ " ${PUBLIC_NAMES[*]} " == *" $needed "* ]] || COMPOSE_READY=0
done
COMPOSE_SUMMARY="skipped (not every package of the composition is published)"
if ((COMPOSE_READY)); then
  (cd "$CONSUMER" && quietly "upload/download through a server composed from the tarballs" node check-compose.mjs)
  COMPOSE_SUMMARY="upload + authenticated download ok"
fi

EXPECTED_JSON=$(
  for name in "${PUBLIC_NAMES[@]}"; do printf '%s\t%s\n' "$name" "${NEW_VERSION[$name]}"; done |
    node -e 'const rows = require("fs").readFileSync(0, "utf8").trim().split("\n").map((l) => l.split("\t"));
             console.log(JSON.stringify(Object.fromEntries(rows)))'
)
(cd "$CONSUMER" && quietly "importing the installed packages" node check-runtime.mjs "$EXPECTED_JSON")
declare -A EXPORT_COUNT
while IFS=$'\t' read -r name count; do EXPORT_COUNT[$name]=$count; done <"$LOG"

# Every entry point: each package and each of its subpath exports (`@hsmedia/media-core/memory`).
ENTRY_POINTS=()
for i in "${!PUBLIC_DIRS[@]}"; do
  while IFS= read -r specifier; do ENTRY_POINTS+=("$specifier"); done < <(node -e '
    const manifest = require(process.argv[1]);
    const keys = manifest.exports !== null && typeof manifest.exports === "object" ? Object.keys(manifest.exports) : [];
    console.log(manifest.name);
    for (const key of keys) {
      if (key.startsWith("./") && key !== "./package.json" && !key.includes("*")) console.log(manifest.name + key.slice(1));
    }' "$REPO/${PUBLIC_DIRS[$i]}/package.json")
done
{
  echo '// Generated by tooling/release-dry-run.sh: every public entry point must resolve with types.'
  for i in "${!ENTRY_POINTS[@]}"; do echo "import * as entry$i from '${ENTRY_POINTS[$i]}';"; done
  echo "export const entries = [$(for i in "${!ENTRY_POINTS[@]}"; do printf 'entry%s, ' "$i"; done)] as const;"
} >"$CONSUMER/check-types.ts"
(cd "$CONSUMER" && quietly "tsc --noEmit in the consumer (types do not resolve)" "${TSC[@]}" -p tsconfig.json)

for name in "${PUBLIC_NAMES[@]}"; do
  printf 'release-dry-run: ok %-28s %-16s %s, %s runtime exports, types ok\n' \
    "$name" "${OLD_VERSION[$name]:-?} → ${NEW_VERSION[$name]}" "${PACK_SUMMARY[$name]}" "${EXPORT_COUNT[$name]:-?}"
done
echo "release-dry-run: consumer composition (client-auth, media-core, media-routes, store-fs, store-sqlite on koa): $COMPOSE_SUMMARY"
echo "release-dry-run: ${#PUBLIC_NAMES[@]} packages (${#ENTRY_POINTS[@]} entry points) packed and installed, $PENDING pending changeset(s) applied, $((SECONDS - START_SECONDS)) s"
