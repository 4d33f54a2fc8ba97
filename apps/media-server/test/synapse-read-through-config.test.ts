import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';

describe('synapse_read_through config', () => {
  it('is off when absent; resolves paths against the config directory and fills the backfill defaults', () => {
    const off = parseConfig({}, '/srv');
    expect(off.ok && off.config.synapseReadThrough).toBeUndefined();
    const on = parseConfig({ synapse_read_through: { database: { sqlite: 'synapse/homeserver.db' }, media_store_path: 'synapse/media' } }, '/srv');
    expect(on.ok && on.config.synapseReadThrough).toEqual({
      database: { sqlite: '/srv/synapse/homeserver.db' },
      mediaStorePath: '/srv/synapse/media',
      backfill: { enabled: true, filesPerSecond: 20 },
    });
    const postgres = parseConfig(
      { synapse_read_through: { database: { postgres: 'postgresql://synapse@127.0.0.1/synapse' }, media_store_path: '/m', backfill: { enabled: false, files_per_second: 2.5 } } },
      '/srv',
    );
    expect(postgres.ok && postgres.config.synapseReadThrough).toMatchObject({ database: { postgres: 'postgresql://synapse@127.0.0.1/synapse' }, backfill: { enabled: false, filesPerSecond: 2.5 } });
  });

  it('refuses bad values with keyed messages', () => {
    for (const [section, key] of [
      [{ media_store_path: '/m' }, 'synapse_read_through.database'],
      [{ database: { sqlite: '/d' } }, 'synapse_read_through.media_store_path'],
      [{ database: { postgres: 'mysql://x' }, media_store_path: '/m' }, 'synapse_read_through.database'],
      [{ database: { sqlite: '/d', postgres: 'postgres://x' }, media_store_path: '/m' }, 'synapse_read_through.database'],
      [{ database: { sqlite: '/d' }, media_store_path: '/m', backfill: { files_per_second: 0 } }, 'synapse_read_through.backfill.files_per_second'],
      [{ database: { sqlite: '/d' }, media_store_path: '/m', extra: 1 }, 'synapse_read_through'],
    ] as const) {
      const result = parseConfig({ synapse_read_through: section }, '/srv');
      expect(result.ok, JSON.stringify(section)).toBe(false);
      if (!result.ok) expect(result.errors.join('\n'), JSON.stringify(section)).toContain(key);
    }
  });
});
