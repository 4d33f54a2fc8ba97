#!/usr/bin/env node
// The `hsmedia-server` command: a committed launcher for the built dist/cli.js.
// The bin cannot point at dist/cli.js itself: npm links a bin into node_modules/.bin only
// when its file exists at install time, and in a fresh clone `npm ci` runs before the first
// `npm run build`; with no link, `npx hsmedia-server` asks the registry and fails.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('hsmedia-server: not built yet; run `npm run build` in the repository root first\n');
  process.exit(1);
}
import(cli.href).catch((error) => {
  process.stderr.write(`hsmedia-server: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
