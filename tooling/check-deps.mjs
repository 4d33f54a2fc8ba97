#!/usr/bin/env node
/**
 * Keeps the internal dependency graph a layered DAG (tooling/dependency-graph.json).
 *
 * Fails (exit 1, one line per problem) when a workspace:
 * - is a packages/* workspace missing from the table;
 * - declares an internal edge in dependencies/peerDependencies/optionalDependencies
 *   that the table does not allow;
 * - declares an internal dependency with anything but a semver range (`workspace:*`,
 *   `*`, `file:` ...), or with a range its workspace version does not satisfy;
 * - takes part in a dependency cycle (devDependencies included: turbo's `^build`
 *   follows them too);
 * - imports an `@hsmedia/*` package from src/test code without declaring it
 *   (non-test files: dependencies/peerDependencies/optionalDependencies only).
 *
 * Usage: node tooling/check-deps.mjs [--root <repo>] [--graph <dependency-graph.json>]
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

const SCOPE = '@hsmedia/';
const RUNTIME_FIELDS = ['dependencies', 'peerDependencies', 'optionalDependencies'];
const ALL_FIELDS = [...RUNTIME_FIELDS, 'devDependencies'];
const SOURCE_DIRS = ['src', 'test'];
const SOURCE_FILE = /\.(?:[cm]?ts|tsx|[cm]?js)$/;
// Files that never ship: tests, and anything under a test-only directory.
const TEST_FILE = /(?:\.(?:test|spec)\.[cm]?[jt]sx?$)|(?:(?:^|\/)(?:test|tests|__tests__|fixtures)\/)/;

/** Reads and parses a JSON file, naming the file when it is broken. */
function readJson(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * Lists the workspaces named by the root package.json `workspaces` globs
 * (`dir/*` or plain directories), in a stable order.
 */
export function discoverWorkspaces(root) {
  const rootManifest = readJson(path.join(root, 'package.json'));
  const patterns = Array.isArray(rootManifest.workspaces)
    ? rootManifest.workspaces
    : (rootManifest.workspaces?.packages ?? []);
  const dirs = [];
  for (const pattern of patterns) {
    if (pattern.endsWith('/*')) {
      const parent = pattern.slice(0, -2);
      const absParent = path.join(root, parent);
      if (!existsSync(absParent)) continue;
      for (const entry of readdirSync(absParent, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
        if (entry.isDirectory()) dirs.push(`${parent}/${entry.name}`);
      }
    } else {
      dirs.push(pattern.replace(/\/$/, ''));
    }
  }
  const workspaces = [];
  for (const dir of dirs) {
    const manifestPath = path.join(root, dir, 'package.json');
    if (!existsSync(manifestPath)) continue;
    const manifest = readJson(manifestPath);
    workspaces.push({
      dir,
      name: manifest.name,
      version: manifest.version,
      isPrivate: manifest.private === true,
      manifest,
    });
  }
  return workspaces;
}

/** True when `dir` (e.g. `apps/media-server`) matches a `parent/*` or exact pattern. */
function matchesPattern(dir, pattern) {
  if (pattern.endsWith('/*')) return path.posix.dirname(dir) === pattern.slice(0, -2);
  return dir === pattern;
}

const COMPARATOR = /^(?:\^|~|>=|<=|>|<|=)?v?\d+(?:\.(?:\d+|x|\*)){0,2}(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;

/** True for a plain semver range (`^0.1.0`, `~1.2.3`, `>=1 <2`, `1.x || 2.x`); false for `*`, tags, protocols. */
export function isSemverRange(range) {
  if (typeof range !== 'string' || range.trim() === '') return false;
  return range.split('||').every((alternative) => {
    const parts = alternative.trim().split(/\s+/);
    if (parts.length === 3 && parts[1] === '-') return COMPARATOR.test(parts[0]) && COMPARATOR.test(parts[2]);
    return parts.every((part) => part !== '' && COMPARATOR.test(part));
  });
}

function parseVersion(version) {
  const match = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version ?? '');
  return match ? [Number(match[1]), Number(match[2]), Number(match[3])] : null;
}

function compareVersions(a, b) {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/**
 * Whether `version` satisfies a single `^x.y.z`, `~x.y.z` or `x.y.z` range.
 * Returns null for range shapes this small checker does not evaluate.
 */
export function satisfiesSimpleRange(version, range) {
  const match = /^(\^|~|=)?v?(\d+)\.(\d+)\.(\d+)$/.exec(range.trim());
  const actual = parseVersion(version);
  if (!match || !actual) return null;
  const low = [Number(match[2]), Number(match[3]), Number(match[4])];
  if (compareVersions(actual, low) < 0) return false;
  const operator = match[1] ?? '=';
  if (operator === '=') return compareVersions(actual, low) === 0;
  let high;
  if (operator === '~') high = [low[0], low[1] + 1, 0];
  else if (low[0] > 0) high = [low[0] + 1, 0, 0];
  else if (low[1] > 0) high = [0, low[1] + 1, 0];
  else high = [0, 0, low[2] + 1];
  return compareVersions(actual, high) < 0;
}

/** Recursively lists source files under `dir` (skipping node_modules and dist). */
function listSourceFiles(dir) {
  if (!existsSync(dir)) return [];
  const files = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'dist') continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) files.push(...listSourceFiles(full));
    else if (SOURCE_FILE.test(entry.name)) files.push(full);
  }
  return files.sort();
}

/** Package names (`@hsmedia/x`) imported, re-exported, dynamically imported or required by a file. */
export function internalImportsOf(sourceText) {
  // The TypeScript pre-processor skips comments and strings, so TSDoc `@example` imports do not count.
  const info = ts.preProcessFile(sourceText, true, true);
  const names = new Set();
  for (const imported of info.importedFiles) {
    if (!imported.fileName.startsWith(SCOPE)) continue;
    names.add(imported.fileName.split('/').slice(0, 2).join('/'));
  }
  return [...names];
}

/** Checks the graph table itself: known layers, edges only downwards to listed packages. */
function checkTable(graph) {
  const problems = [];
  const table = graph.packages ?? {};
  for (const [name, entry] of Object.entries(table)) {
    if (typeof entry.layer !== 'number') problems.push(`dependency-graph.json: ${name} has no numeric "layer"`);
    for (const target of entry.allow ?? []) {
      const targetEntry = table[target];
      if (!targetEntry) problems.push(`dependency-graph.json: ${name} allows ${target}, which is not in the table`);
      else if (!(targetEntry.layer < entry.layer)) {
        problems.push(
          `dependency-graph.json: ${name} (layer ${entry.layer}) allows ${target} (layer ${targetEntry.layer}); edges must point to a lower layer`,
        );
      }
    }
  }
  return problems;
}

/** Whether the table lets `from` depend on `to` at runtime. */
function isAllowed(graph, from, to) {
  const entry = graph.packages[from];
  if (!entry) return false;
  if (Array.isArray(entry.allow) && entry.allow.includes(to)) return true;
  if (typeof entry.allowBelowLayer === 'number') {
    const target = graph.packages[to];
    return target !== undefined && target.layer < entry.allowBelowLayer;
  }
  return false;
}

function allowedList(graph, from) {
  const entry = graph.packages[from];
  if (!entry) return 'nothing';
  if (typeof entry.allowBelowLayer === 'number') return `any package below layer ${entry.allowBelowLayer}`;
  return entry.allow?.length ? entry.allow.join(', ') : 'no internal packages';
}

/** Finds the cycles closed by back edges of a depth-first walk (at least one per cyclic component). */
function findCycles(nodes, edges) {
  const cycles = [];
  const state = new Map(); // undefined: unvisited, 1: on stack, 2: done
  const stack = [];
  const visit = (node) => {
    state.set(node, 1);
    stack.push(node);
    for (const edge of edges.get(node) ?? []) {
      const next = edge.to;
      if (state.get(next) === 1) {
        // Rotate the loop to start at its alphabetically first package: stable messages.
        const loop = stack.slice(stack.indexOf(next));
        const first = loop.indexOf([...loop].sort()[0]);
        const rotated = [...loop.slice(first), ...loop.slice(0, first)];
        cycles.push([...rotated, rotated[0]]);
      } else if (state.get(next) === undefined) {
        visit(next);
      }
    }
    stack.pop();
    state.set(node, 2);
  };
  for (const node of nodes) if (state.get(node) === undefined) visit(node);
  return cycles;
}

/**
 * Runs every check. Returns `{ problems, summary }`; `problems` is empty when the graph is fine.
 * @param {{ root: string, graph?: object }} options `graph` defaults to `<root>/tooling/dependency-graph.json`.
 */
export function checkDependencies({ root, graph }) {
  const table = graph ?? readJson(path.join(root, 'tooling', 'dependency-graph.json'));
  table.packages ??= {};
  const unrestricted = table.unrestricted ?? [];
  const problems = checkTable(table);
  const workspaces = discoverWorkspaces(root);
  const byName = new Map(workspaces.map((ws) => [ws.name, ws]));
  const edges = new Map();
  let edgeCount = 0;
  let filesScanned = 0;

  for (const ws of workspaces) {
    const isUnrestricted = unrestricted.some((pattern) => matchesPattern(ws.dir, pattern));
    const inTable = Object.hasOwn(table.packages, ws.name);
    if (!isUnrestricted && !inTable) {
      problems.push(
        `${ws.dir} (${ws.name}) is not in tooling/dependency-graph.json: add it with its layer and allowed dependencies`,
      );
    }
    const wsEdges = [];
    edges.set(ws.name, wsEdges);

    for (const field of ALL_FIELDS) {
      for (const [dep, range] of Object.entries(ws.manifest[field] ?? {})) {
        const target = byName.get(dep);
        if (!dep.startsWith(SCOPE) && !target) continue;
        edgeCount++;
        if (!target) {
          problems.push(`${ws.name} → ${dep} (${field}): ${dep} is not a workspace of this repository`);
          continue;
        }
        wsEdges.push({ to: dep, field });
        if (!isSemverRange(range)) {
          problems.push(
            `${ws.name} → ${dep} (${field}) is declared as ${JSON.stringify(range)}; internal dependencies must be semver ranges such as "^${target.version}"`,
          );
        } else if (satisfiesSimpleRange(target.version, range) === false) {
          problems.push(
            `${ws.name} → ${dep} (${field}) is declared as "${range}" but the workspace is at ${target.version}; npm would fetch it from the registry`,
          );
        }
        if (field === 'devDependencies') continue;
        if (!ws.isPrivate && target.isPrivate) {
          problems.push(`${ws.name} → ${dep} (${field}): a published package cannot depend on the private ${dep}`);
        }
        if (!isUnrestricted && inTable && !isAllowed(table, ws.name, dep)) {
          problems.push(
            `forbidden edge ${ws.name} → ${dep} (${field}): tooling/dependency-graph.json allows ${ws.name} to depend on ${allowedList(table, ws.name)}`,
          );
        }
      }
    }

    // Imports must be declared: shipped files in runtime fields, test files in any field.
    const runtime = new Set(RUNTIME_FIELDS.flatMap((field) => Object.keys(ws.manifest[field] ?? {})));
    const dev = new Set(Object.keys(ws.manifest.devDependencies ?? {}));
    for (const sourceDir of SOURCE_DIRS) {
      for (const file of listSourceFiles(path.join(root, ws.dir, sourceDir))) {
        filesScanned++;
        const relative = path.relative(root, file).split(path.sep).join('/');
        const isTest = TEST_FILE.test(path.relative(path.join(root, ws.dir), file).split(path.sep).join('/'));
        for (const imported of internalImportsOf(readFileSync(file, 'utf8'))) {
          if (imported === ws.name || runtime.has(imported)) continue;
          if (isTest && dev.has(imported)) continue;
          if (dev.has(imported)) {
            problems.push(
              `${relative} imports ${imported}, which ${ws.dir}/package.json declares only in devDependencies; shipped code needs it in dependencies or peerDependencies`,
            );
          } else {
            problems.push(
              `${relative} imports ${imported}, which ${ws.dir}/package.json does not declare (add it to ${isTest ? 'devDependencies' : 'dependencies or peerDependencies'})`,
            );
          }
        }
      }
    }
  }

  for (const cycle of findCycles([...edges.keys()], edges)) {
    const hops = [];
    for (let i = 0; i + 1 < cycle.length; i++) {
      const edge = edges.get(cycle[i]).find((candidate) => candidate.to === cycle[i + 1]);
      hops.push(`${cycle[i]} → ${cycle[i + 1]} (${edge.field})`);
    }
    problems.push(`dependency cycle: ${hops.join(', ')}`);
  }

  return {
    problems,
    summary: `${workspaces.length} workspaces, ${edgeCount} internal edges, ${filesScanned} source files scanned`,
  };
}

function parseArgs(argv) {
  const options = { root: path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'), graphPath: undefined };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--root') options.root = path.resolve(argv[++i] ?? '.');
    else if (argv[i] === '--graph') options.graphPath = path.resolve(argv[++i] ?? '');
    else throw new Error(`unknown argument ${argv[i]} (usage: check-deps.mjs [--root <dir>] [--graph <file>])`);
  }
  return options;
}

function main() {
  try {
    const { root, graphPath } = parseArgs(process.argv.slice(2));
    const graph = graphPath ? readJson(graphPath) : undefined;
    const { problems, summary } = checkDependencies({ root, graph });
    if (problems.length > 0) {
      for (const problem of problems) process.stderr.write(`check-deps: ${problem}\n`);
      process.stderr.write(`check-deps: FAILED with ${problems.length} problem(s) (${summary})\n`);
      process.exitCode = 1;
      return;
    }
    process.stdout.write(`check-deps: ok (${summary})\n`);
  } catch (error) {
    process.stderr.write(`check-deps: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) main();
