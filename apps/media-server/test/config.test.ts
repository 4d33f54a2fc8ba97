import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configJsonSchema, defaultConfig, loadConfigFile, parseConfig, parseConfigText } from '../src/config.js';
import { parseByteSize } from '../src/byte-size.js';
import { DEFAULT_URL_PREVIEW_IP_RANGE_DENYLIST } from '../src/url-preview.js';

const appDir = fileURLToPath(new URL('..', import.meta.url));

function errorsOf(document: unknown): readonly string[] {
  const result = parseConfig(document, '/srv');
  if (result.ok) throw new Error('expected the config to be refused');
  return result.errors;
}

describe('parseByteSize', () => {
  it.each([
    [0, 0],
    [1048576, 1048576],
    ['123', 123],
    ['10B', 10],
    ['512K', 512 * 1024],
    ['512kb', 512 * 1024],
    ['50M', 50 * 1024 ** 2],
    ['100MiB', 100 * 1024 ** 2],
    ['100 MB', 100 * 1024 ** 2],
    ['1G', 1024 ** 3],
    ['1.5g', 1.5 * 1024 ** 3],
    ['2TiB', 2 * 1024 ** 4],
  ])('%s is %d bytes', (input, bytes) => {
    expect(parseByteSize(input)).toBe(bytes);
  });

  it.each([[-1], [1.5], ['M'], ['50X'], ['-5M'], ['5 M B'], [''], ['1e3'], ['9999999999T']])('refuses %s', (input) => {
    expect(parseByteSize(input)).toBeUndefined();
  });
});

describe('parseConfig', () => {
  it('reads the log buffer bound and the access log sample rate, refusing bad values with keyed messages', () => {
    const ok = parseConfig({ log_buffer_size: '1M', access_log_sample_rate: 0.25 }, '/srv');
    expect(ok.ok && [ok.config.logBufferBytes, ok.config.accessLogSampleRate]).toEqual([1024 * 1024, 0.25]);
    for (const [document, key] of [
      [{ log_buffer_size: '1K' }, 'log_buffer_size:'],
      [{ log_buffer_size: 'lots' }, 'log_buffer_size:'],
      [{ access_log_sample_rate: 0 }, 'access_log_sample_rate:'],
      [{ access_log_sample_rate: 1.5 }, 'access_log_sample_rate:'],
      [{ access_log_sample_rate: '1' }, 'access_log_sample_rate:'],
    ] as const) {
      expect([document, errorsOf(document).some((message) => message.startsWith(key))]).toEqual([document, true]);
    }
  });

  it('switches the admin console on only when asked, and refuses anything but a boolean', () => {
    const on = parseConfig({ admin_console: { enabled: true } }, '/srv/hs');
    expect(on.ok && on.config.adminConsole).toEqual({ enabled: true });
    const bad = parseConfig({ admin_console: { enabled: 'yes', path: '/x' } }, '/srv/hs');
    expect(bad.ok).toBe(false);
    expect(bad.ok ? [] : bad.errors).toEqual(['admin_console.enabled: Expected boolean, got string', 'admin_console.path: Unknown key']);
  });

  it('fills every default for an empty document, resolving paths against the base directory', () => {
    const result = parseConfig({}, '/srv/hs');
    expect(result).toEqual({
      ok: true,
      config: {
        serverName: 'localhost',
        accessPolicy: { denyServingTo: [], preventDownloadsFrom: [], http: undefined },
        cluster: { redisUrl: undefined, sharedLimits: 'auto', tokenCacheTtlMs: 60_000 },
        adminConsole: { enabled: false },
        listen: { host: '127.0.0.1', port: 8008, trustedProxies: [] },
        database: { kind: 'sqlite', path: '/srv/hs/data/media.db' },
        mediaStore: { kind: 'filesystem', path: '/srv/hs/data/media' },
        dedup: { enabled: false, orphanGraceMs: 3_600_000, orphanSweepIntervalMs: 21_600_000 },
        delivery: 'proxy',
        xAccelLocation: '/_hsmedia_accel/',
        signingKeyPath: '/srv/hs/data/signing.key',
        maxUploadBytes: 50 * 1024 * 1024,
        auth: { kind: 'generated', userId: '@admin:localhost', tokenPath: '/srv/hs/data/admin-token' },
        legacyMedia: { freeze: true },
        logLevel: 'info',
        logBufferBytes: 16 * 1024 * 1024,
        accessLogSampleRate: 1,
        mediaCache: { maxBytes: 64 * 1024 * 1024, maxItemBytes: 64 * 1024 },
        shutdownTimeoutMs: 10_000,
        federation: {
          destinations: {},
          ipRangeAllowlist: [],
          ipRangeDenylist: [],
          caFile: undefined,
          maxDownloadBytes: 50 * 1024 * 1024,
          connectTimeoutMs: 10_000,
          requestTimeoutMs: 30_000,
          failureCacheMs: 30_000,
          fetchDeadlineMs: 120_000,
          minDownloadBytesPerSecond: 4096,
          trustedKeyServers: [],
          denyOrigins: [],
        },
        limits: {
          create: { perSecond: 10, burst: 50 },
          upload: null,
          download: null,
          federation: null,
          downloadBytes: { client: null, legacy: null, federation: null },
          maxPendingUploads: 5,
          unusedExpirationMs: 86_400_000,
          pendingCleanupIntervalMs: 300_000,
          maxTimeoutMs: 60_000,
          uploadIdleTimeoutMs: 60_000,
        },
        quotas: undefined,
        admins: ['@admin:localhost'],
        retention: { intervalMs: 3_600_000 },
        metrics: { enabled: false, listen: { host: '127.0.0.1', port: 9102 } },
        workers: availableParallelism(),
        urlPreview: {
          enabled: false,
          ipRangeDenylist: [...DEFAULT_URL_PREVIEW_IP_RANGE_DENYLIST],
          ipRangeAllowlist: [],
          urlDenylist: [],
          maxPageBytes: 10 * 1024 * 1024,
          maxImageBytes: 10 * 1024 * 1024,
          userAgent: undefined,
          acceptLanguage: undefined,
          timeoutMs: 10_000,
          cacheTtlMs: 3_600_000,
          oEmbed: { providersFile: undefined, discovery: true },
        },
        thumbnails: {
          enabled: true,
          dynamic: false,
          sizes: [
            { width: 32, height: 32, method: 'crop', animated: false },
            { width: 96, height: 96, method: 'crop', animated: false },
            { width: 320, height: 240, method: 'scale', animated: false },
            { width: 640, height: 480, method: 'scale', animated: false },
            { width: 800, height: 600, method: 'scale', animated: false },
          ],
          maxSourceBytes: 50 * 1024 * 1024,
          maxPixels: 33_554_432,
          maxConcurrent: undefined,
          remoteThumbnailFirst: true,
        },
      },
    });
  });

  it('checks the thumbnails section under its keys', () => {
    expect(
      errorsOf({
        thumbnails: {
          dynamic: 'yes',
          sizes: [{ width: 0, height: 32, method: 'crop' }, { width: 32, height: 32, method: 'zoom' }, { width: 32, height: 32, method: 'crop', extra: 1 }],
          max_source_size: 0,
          max_pixels: -1,
          max_concurrent: 0,
          remote_thumbnail_first: 'no',
          unknown: true,
        },
      }),
    ).toEqual([
      'thumbnails.dynamic: Expected boolean, got string',
      'thumbnails.sizes.0.width: Too small: expected number to be >=1',
      'thumbnails.sizes.1.method: Expected one of "crop", "scale"',
      'thumbnails.sizes.2.extra: Unknown key',
      'thumbnails.max_source_size: Must be more than 0',
      'thumbnails.max_pixels: Too small: expected number to be >0',
      'thumbnails.max_concurrent: Too small: expected number to be >0',
      'thumbnails.remote_thumbnail_first: Expected boolean, got string',
      'thumbnails.unknown: Unknown key',
    ]);
    const custom = parseConfig({ thumbnails: { enabled: false, dynamic: true, sizes: [{ width: 64, height: 48, method: 'scale', animated: true }], max_source_size: '8M', max_concurrent: 3, remote_thumbnail_first: false } }, '/srv');
    expect(custom.ok && custom.config.thumbnails).toEqual({
      enabled: false,
      dynamic: true,
      sizes: [{ width: 64, height: 48, method: 'scale', animated: true }],
      maxSourceBytes: 8 * 1024 * 1024,
      maxPixels: 33_554_432,
      maxConcurrent: 3,
      remoteThumbnailFirst: false,
    });
  });

  it('treats an empty YAML file (null) as all defaults', () => {
    expect(parseConfig(null, '/srv').ok).toBe(true);
    expect(parseConfigText('', '/srv').ok).toBe(true);
    expect(parseConfigText('# only comments\n', '/srv').ok).toBe(true);
  });

  it('reports every bad key together, by key path', () => {
    const errors = errorsOf({
      server_name: 'not a server name!',
      listen: { host: '', port: 'eighty' },
      max_upload_size: '50X',
      legacy_media: { freeze: 'yes' },
      log_level: 'loud',
      media_cache: { max_bytes: -1 },
      shutdown_timeout_ms: 1.5,
    });
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^server_name: Expected a server name/),
        expect.stringMatching(/^listen\.host: /),
        'listen.port: Expected number, got string',
        expect.stringMatching(/^max_upload_size: Expected a size such as/),
        'legacy_media.freeze: Expected boolean, got string',
        expect.stringMatching(/^log_level: Expected one of "trace", "debug", "info"/),
        expect.stringMatching(/^media_cache\.max_bytes: /),
        expect.stringMatching(/^shutdown_timeout_ms: /),
      ]),
    );
    expect(errors).toHaveLength(8);
  });

  it('refuses unknown keys at every level, so typos do not pass silently', () => {
    const errors = errorsOf({
      server_nme: 'example.org',
      listen: { prot: 1 },
      database: { sqlite: { path: 'x', journal: 'wal' } },
      media_store: { filesystem: { path: 'x' }, s4: {} },
    });
    expect(errors).toEqual([
      'listen.prot: Unknown key',
      'database.sqlite.journal: Unknown key',
      'media_store.s4: Unknown key',
      'server_nme: Unknown key',
    ].sort((a, b) => errors.indexOf(a) - errors.indexOf(b)));
    expect(new Set(errors)).toEqual(
      new Set(['server_nme: Unknown key', 'listen.prot: Unknown key', 'database.sqlite.journal: Unknown key', 'media_store.s4: Unknown key']),
    );
  });

  it('accepts size strings and numbers for max_upload_size', () => {
    for (const [input, bytes] of [
      ['100MiB', 100 * 1024 ** 2],
      ['1G', 1024 ** 3],
      [12345, 12345],
    ] as const) {
      const result = parseConfig({ max_upload_size: input }, '/srv');
      expect(result.ok && result.config.maxUploadBytes).toBe(bytes);
    }
  });

  it('explains bad sizes', () => {
    const hint = 'Expected a size such as 1048576, "512K", "50M", "100MiB" or "1G"';
    expect(errorsOf({ max_upload_size: true })).toEqual([`max_upload_size: ${hint}`]);
    expect(errorsOf({ max_upload_size: '5 parsecs' })).toEqual([`max_upload_size: ${hint}`]);
    expect(errorsOf({ max_upload_size: '9999999999T' })).toEqual(['max_upload_size: Size is too large']);
    expect(errorsOf({ shutdown_timeout_ms: 1.5 })).toEqual(['shutdown_timeout_ms: Expected a whole number']);
  });

  it('takes the static token table', () => {
    const result = parseConfig({ server_name: 'example.org', auth: { tokens: { s3cret: '@alice:example.org' } } }, '/srv');
    expect(result.ok && result.config.auth).toEqual({ kind: 'tokens', tokens: { s3cret: '@alice:example.org' } });
  });

  it('takes a homeserver URL for whoami delegation', () => {
    const result = parseConfig({ auth: { homeserver_url: 'http://127.0.0.1:8008' } }, '/srv');
    expect(result.ok && result.config.auth).toEqual({
      kind: 'homeserver',
      homeserverUrl: 'http://127.0.0.1:8008',
      homeserverAdmins: false,
      keyPublishedElsewhere: false,
    });
  });

  it('makes the two auth modes exclusive, and requires one when auth is given', () => {
    expect(errorsOf({ auth: { tokens: { t: '@a:b' }, homeserver_url: 'http://127.0.0.1' } })).toEqual([
      'auth: Set exactly one of `tokens`, `homeserver_url`',
    ]);
    expect(errorsOf({ auth: {} })).toEqual(['auth: Set exactly one of `tokens`, `homeserver_url`']);
  });

  it('reports the exclusivity together with problems inside the auth branches', () => {
    const errors = errorsOf({ auth: { tokens: { t: 42 }, homeserver_url: 'ftp://x' } });
    expect(new Set(errors)).toEqual(
      new Set([
        'auth.tokens."t…": Expected string, got number',
        'auth.homeserver_url: Expected an http:// or https:// URL',
        'auth: Set exactly one of `tokens`, `homeserver_url`',
      ]),
    );
  });

  it('checks token values are user IDs and never prints a whole token', () => {
    const errors = errorsOf({ auth: { tokens: { verysecrettoken: 'alice' } } });
    expect(errors).toEqual(['auth.tokens."very…": Expected a Matrix user ID such as "@alice:example.org"']);
    expect(errors.join()).not.toContain('verysecrettoken');
    expect(errorsOf({ auth: { tokens: {} } })).toEqual([
      'auth.tokens: Expected at least one token (leave out `auth` to get a generated admin token)',
    ]);
  });

  it('requires exactly one database and media store backend', () => {
    expect(errorsOf({ database: {}, media_store: {} })).toEqual([
      'database: Set exactly one of `sqlite`, `postgres`',
      'media_store: Set exactly one of `filesystem`, `s3`',
    ]);
    expect(errorsOf({ database: { sqlite: {}, postgres: { url: 'postgres://127.0.0.1/x' } } })).toEqual([
      'database: Set exactly one of `sqlite`, `postgres`',
    ]);
  });

  it('rejects a top level that is not a mapping, and broken YAML', () => {
    expect(errorsOf([])).toEqual(['(top level): Expected mapping, got list']);
    const yamlResult = parseConfigText('listen: [1,\n', '/srv', 'x.yaml');
    expect(yamlResult.ok).toBe(false);
    expect(!yamlResult.ok && yamlResult.errors[0]).toMatch(/^x\.yaml: invalid YAML/);
    const dup = parseConfigText('server_name: a\nserver_name: b\n', '/srv', 'x.yaml');
    expect(!dup.ok && dup.errors[0]).toMatch(/^x\.yaml: invalid YAML/);
    const scalar = parseConfigText('hello', '/srv', 'x.yaml');
    expect(!scalar.ok && scalar.errors).toEqual(['x.yaml: expected a mapping of keys at the top level']);
  });

  it('defaultConfig resolves ./data against the working directory', () => {
    expect(defaultConfig('/var/lib/hsmedia').database).toEqual({ kind: 'sqlite', path: '/var/lib/hsmedia/data/media.db' });
  });
});

describe('config files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hsmedia-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('resolves relative paths against the config file directory', async () => {
    const file = join(dir, 'c.yaml');
    await writeFile(file, 'media_store:\n  filesystem:\n    path: store\n');
    const result = await loadConfigFile(file);
    expect(result.ok && result.config.mediaStore).toEqual({ kind: 'filesystem', path: join(dir, 'store') });
  });

  it('reports a missing file', async () => {
    const result = await loadConfigFile(join(dir, 'missing.yaml'));
    expect(result).toEqual({ ok: false, errors: [`${join(dir, 'missing.yaml')}: file not found`] });
  });

  it('the documented sample config is valid and sets every top-level key', async () => {
    const samplePath = resolve(appDir, 'config.sample.yaml');
    const result = await loadConfigFile(samplePath);
    expect(result.ok ? [] : result.errors).toEqual([]);
    const text = await readFile(samplePath, 'utf8');
    const schema = configJsonSchema() as { properties: Record<string, unknown> };
    for (const key of Object.keys(schema.properties)) {
      expect(text, `config.sample.yaml documents ${key}`).toMatch(new RegExp(`^#? ?${key}:`, 'm'));
    }
  });
});

describe('configJsonSchema', () => {
  it('is a closed draft 2020-12 schema listing every key', () => {
    const schema = configJsonSchema() as {
      $schema: string;
      additionalProperties: boolean;
      properties: Record<string, { additionalProperties?: boolean }>;
    };
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties).sort()).toEqual(
      [
        'access_policy',
        'admin_console',
        'admins',
        'auth',
        'database',
        'dedup',
        'delivery',
        'x_accel_location',
        'metrics',
        'retention',
        'federation',
        'legacy_media',
        'limits',
        'listen',
        'log_level',
        'log_buffer_size',
        'access_log_sample_rate',
        'max_upload_size',
        'media_cache',
        'media_store',
        'quotas',
        'server_name',
        'shutdown_timeout_ms',
        'signing_key_path',
        'synapse',
        'url_preview',
        'thumbnails',
        'scanning',
        'workers',
        'cluster',
        'synapse_read_through',
      ].sort(),
    );
    expect(schema.properties['listen']?.additionalProperties).toBe(false);
    expect(schema.properties['federation']?.additionalProperties).toBe(false);
  });
});

describe('federation config', () => {
  it('resolves destinations, ranges, sizes, the CA path and notaries', () => {
    const result = parseConfig(
      {
        max_upload_size: '10M',
        federation: {
          destinations: { 'b.test': 'http://127.0.0.1:8009/', 'c.test:8448': 'https://[::1]:8448' },
          ip_range_allowlist: ['127.0.0.1/32'],
          ip_range_denylist: ['203.0.113.0/24'],
          ca_file: 'ca.pem',
          max_download_size: '20M',
          request_timeout_ms: 5000,
          fetch_deadline: '90s',
          min_download_rate: '16K',
          trusted_key_servers: [{ server_name: 'matrix.org', verify_keys: { 'ed25519:auto': 'Noi6WqcDj0QmPxCNQqgezwTlBKrfqehY1u2FyWP9uYw' } }],
          deny_origins: ['evil.test'],
        },
      },
      '/srv',
    );
    if (!result.ok) throw new Error(result.errors.join('\n'));
    expect(result.config.federation).toEqual({
      destinations: { 'b.test': 'http://127.0.0.1:8009', 'c.test:8448': 'https://[::1]:8448' },
      ipRangeAllowlist: ['127.0.0.1/32'],
      ipRangeDenylist: ['203.0.113.0/24'],
      caFile: '/srv/ca.pem',
      maxDownloadBytes: 20 * 1024 * 1024,
      connectTimeoutMs: 10_000,
      requestTimeoutMs: 5000,
      failureCacheMs: 30_000,
      fetchDeadlineMs: 90_000,
      minDownloadBytesPerSecond: 16 * 1024,
      trustedKeyServers: [{ serverName: 'matrix.org', verifyKeys: { 'ed25519:auto': 'Noi6WqcDj0QmPxCNQqgezwTlBKrfqehY1u2FyWP9uYw' } }],
      denyOrigins: ['evil.test'],
    });
  });

  it('accepts min_download_rate 0 (off) and refuses a zero or malformed fetch_deadline, keyed', () => {
    const off = parseConfig({ federation: { min_download_rate: 0 } }, '/srv');
    expect(off.ok && off.config.federation.minDownloadBytesPerSecond).toBe(0);
    const bad = parseConfig({ federation: { fetch_deadline: 0, min_download_rate: 'fast' } }, '/srv');
    expect(bad.ok).toBe(false);
    const problems = bad.ok ? [] : bad.errors;
    expect(problems.some((line) => line.startsWith('federation.fetch_deadline: '))).toBe(true);
    expect(problems.some((line) => line.startsWith('federation.min_download_rate: '))).toBe(true);
  });

  it('defaults max_download_size to max_upload_size', () => {
    const result = parseConfig({ max_upload_size: '10M' }, '/srv');
    expect(result.ok && result.config.federation.maxDownloadBytes).toBe(10 * 1024 * 1024);
  });

  it('reports bad entries with their paths', () => {
    const result = parseConfig(
      {
        federation: {
          destinations: { 'bad name!': 'http://x', 'b.test': 'ftp://x', 'c.test': 'http://host/path' },
          ip_range_allowlist: ['localhost'],
          deny_origins: ['no spaces'],
          surprise: 1,
        },
      },
      '/srv',
    );
    expect(result.ok).toBe(false);
    const errors = result.ok ? [] : result.errors;
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^federation\.destinations\.bad name!: /),
        expect.stringMatching(/^federation\.destinations\.b\.test: /),
        expect.stringMatching(/^federation\.destinations\.c\.test: /),
        expect.stringMatching(/^federation\.ip_range_allowlist\.0: /),
        expect.stringMatching(/^federation\.deny_origins\.0: /),
        'federation.surprise: Unknown key',
      ]),
    );
  });
});

describe('workers', () => {
  it('defaults to one per core (`auto`), takes a count, and refuses 0, fractions and other words', () => {
    const parse = (workers: unknown) => parseConfig(workers === undefined ? {} : { workers }, '/srv');
    expect(parse(undefined)).toMatchObject({ ok: true, config: { workers: availableParallelism() } });
    expect(defaultConfig('/srv').workers).toBe(availableParallelism());
    expect(parse('auto')).toMatchObject({ ok: true, config: { workers: availableParallelism() } });
    expect(parse(3)).toMatchObject({ ok: true, config: { workers: 3 } });
    expect(parse(1)).toMatchObject({ ok: true, config: { workers: 1 } });
    for (const bad of [0, 1.5, -1, 'all', '2']) {
      const result = parse(bad);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.errors.join('\n')).toMatch(/^workers:/m);
    }
  });
});

describe('cluster config', () => {
  it('resolves redis_url, shared_limits and token_cache_ttl', () => {
    const result = parseConfig({ cluster: { redis_url: 'redis://127.0.0.1:6379/2', shared_limits: 'redis', token_cache_ttl: '5s' } }, '/srv');
    expect(result.ok && result.config.cluster).toEqual({ redisUrl: 'redis://127.0.0.1:6379/2', sharedLimits: 'redis', tokenCacheTtlMs: 5_000 });
  });

  it('refuses shared_limits: redis without redis_url, a non-Redis URL and an unknown backend', () => {
    const errors = (document: Record<string, unknown>): readonly string[] => {
      const result = parseConfig({ cluster: document }, '/srv');
      return result.ok ? [] : result.errors;
    };
    expect(errors({ shared_limits: 'redis' })).toEqual(['cluster.redis_url: Required when shared_limits is redis']);
    expect(errors({ redis_url: 'http://127.0.0.1:6379' })).toEqual(['cluster.redis_url: Expected a redis:// or rediss:// URL']);
    expect(errors({ shared_limits: 'etcd' })[0]).toMatch(/^cluster\.shared_limits: Expected one of/);
    expect(errors({ token_cache_ttl: 'soon' })[0]).toMatch(/^cluster\.token_cache_ttl: /);
  });
});
