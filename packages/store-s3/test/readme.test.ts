import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { RGW_START_TIMEOUT_MS, startRgw, type RgwCluster } from '@hsmedia/test-fixtures/rgw';
import { afterAll, beforeAll, expect, it } from 'vitest';

// Runs the README's usage example as it is written, against the built package (dist/).
const packageDir = fileURLToPath(new URL('..', import.meta.url));
let rgw: RgwCluster;

beforeAll(async () => {
  rgw = await startRgw();
}, RGW_START_TIMEOUT_MS);
afterAll(async () => {
  await rgw?.stop();
}, 120_000);

it('the README usage example runs and prints what its comments say', async () => {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
  const example = /## Usage\n```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(example).toBeDefined();
  const bucket = await rgw.createBucket();
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', example!], {
    cwd: packageDir,
    env: {
      ...process.env,
      S3_ENDPOINT: rgw.endpoint,
      S3_BUCKET: bucket,
      AWS_ACCESS_KEY_ID: rgw.accessKeyId,
      AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  });
  const expected = [...example!.matchAll(/console\.log\(.*\); \/\/ (.*)$/gm)].map((match) => match[1]);
  expect(stdout.trim().split('\n')).toEqual(expected);
}, 60_000);
