import { createServer, type AddressInfo } from 'node:net';
import { createPostgresMetadataStore, type PostgresMetadataStoreOptions } from '@hsmedia/store-postgres';
import { describe, expect, it } from 'vitest';

const URL_WITH_SECRET = 'postgres://hsmedia:s3cr3t-password@127.0.0.1:5432/test';

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('createPostgresMetadataStore options', () => {
  it('refuses invalid options with a TypeError naming the option, never echoing the URL', async () => {
    const cases: [string, Partial<PostgresMetadataStoreOptions> | undefined][] = [
      ['options', undefined],
      ['url', { url: '' }],
      ['url', { url: 'not a url s3cr3t-password' }],
      ['url', { url: 'mysql://hsmedia:s3cr3t-password@127.0.0.1/test' }],
      ['pool.min', { pool: { min: -1 } }],
      ['pool.max', { pool: { max: 0 } }],
      ['pool.max', { pool: { max: 1.5 } }],
      ['pool.min', { pool: { min: 5, max: 2 } }],
      ['statementTimeoutMs', { statementTimeoutMs: -1 }],
      ['statementTimeoutMs', { statementTimeoutMs: Number.NaN }],
      ['acquireConnectionTimeoutMs', { acquireConnectionTimeoutMs: 0 }],
      ['connectTimeoutMs', { connectTimeoutMs: Number.POSITIVE_INFINITY }],
      ['searchPath', { searchPath: 'a,b' }],
      ['searchPath', { searchPath: 'public"; drop schema x; --' }],
      ['searchPath', { searchPath: '' }],
      ['applicationName', { applicationName: 'x'.repeat(64) }],
      ['applicationName', { applicationName: 'ünïcode' }],
      ['tablePrefix', { tablePrefix: 'bad-prefix' }],
    ];
    for (const [option, overrides] of cases) {
      const options = overrides === undefined ? undefined : { url: URL_WITH_SECRET, migrate: false, ...overrides };
      const failure = await createPostgresMetadataStore(options as PostgresMetadataStoreOptions).catch(
        (error: unknown) => error,
      );
      expect(failure, option).toBeInstanceOf(TypeError);
      expect((failure as Error).message, option).toContain(option);
      expect((failure as Error).message).not.toContain('s3cr3t');
    }
  });

  it('rejects when the database refuses connections, and leaves nothing running', async () => {
    const port = await closedPort();
    const failure = await createPostgresMetadataStore({
      url: `postgres://hsmedia:s3cr3t-password@127.0.0.1:${port}/test`,
      acquireConnectionTimeoutMs: 1_000,
      log: { warn: () => undefined, error: () => undefined },
    }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as { code?: unknown }).code).toBe('ECONNREFUSED');
    expect((failure as Error).message).not.toContain('s3cr3t');
  });

  it('with migrate: false opens without connecting; calls then reject while the database is down', async () => {
    const port = await closedPort();
    const store = await createPostgresMetadataStore({
      url: `postgres://postgres@127.0.0.1:${port}/test`,
      migrate: false,
      acquireConnectionTimeoutMs: 1_000,
      log: { warn: () => undefined, error: () => undefined },
    });
    try {
      await expect(store.getMedia('example.org', 'abc')).rejects.toBeInstanceOf(Error);
      await expect(store.getMedia('example.org', 'abc')).rejects.toBeInstanceOf(Error);
    } finally {
      await store.close();
    }
  });
});
