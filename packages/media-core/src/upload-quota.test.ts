import { describe, expect, it } from 'vitest';
import { isMatrixError } from '@hsmedia/errors';
import type { MediaMetadataStore, MediaUsage } from './ports/index.js';
import { UploadQuotas } from './upload-quota.js';

/** Only getUserUsage is used by UploadQuotas; it answers from a fixed table of (createdAt, size). */
function storeWith(media: readonly [number, number][]): { store: MediaMetadataStore; queries: number[] } {
  const queries: number[] = [];
  const store = {
    async getUserUsage(_userId: string, sinceMs: number): Promise<MediaUsage> {
      queries.push(sinceMs);
      const recent = media.filter(([createdAt]) => createdAt >= sinceMs);
      return { files: recent.length, bytes: recent.reduce((sum, [, size]) => sum + size, 0) };
    },
  } as unknown as MediaMetadataStore;
  return { store, queries };
}

async function refusal(promise: Promise<void>): Promise<{ errcode: string; status: number; data: Record<string, unknown> } | null> {
  try {
    await promise;
    return null;
  } catch (err) {
    if (!isMatrixError(err)) throw err;
    return { errcode: err.errcode, status: err.httpStatus, data: { ...err.data } };
  }
}

describe('UploadQuotas', () => {
  it('queries nothing without limits', async () => {
    const { store, queries } = storeWith([[0, 10]]);
    await new UploadQuotas({}).check(store, '@a:x', 1 << 30, 1000);
    expect(queries).toEqual([]);
  });

  it('checks totals: files + 1 and bytes + incoming', async () => {
    const { store } = storeWith([[0, 600]]);
    expect(await refusal(new UploadQuotas({ default: { maxFiles: 2 } }).check(store, '@a:x', 0, 1))).toBeNull();
    expect(await refusal(new UploadQuotas({ default: { maxFiles: 1 } }).check(store, '@a:x', 0, 1))).toMatchObject({
      errcode: 'M_FORBIDDEN',
      status: 403,
    });
    const bytes = new UploadQuotas({ default: { maxBytes: 1000 } });
    expect(await refusal(bytes.check(store, '@a:x', 400, 1))).toBeNull();
    expect(await refusal(bytes.check(store, '@a:x', 401, 1))).toMatchObject({ errcode: 'M_FORBIDDEN' });
  });

  it('counts the period window as the last periodMs', async () => {
    const { store, queries } = storeWith([[1000, 1]]);
    const quotas = new UploadQuotas({ default: { periodFiles: 1, periodMs: 500 } });
    expect(await refusal(quotas.check(store, '@a:x', 0, 1499))).not.toBeNull();
    expect(await refusal(quotas.check(store, '@a:x', 0, 1500))).toBeNull();
    expect(queries).toEqual([1000, 1001]);
  });

  it('merges per-user limits over the default field by field', () => {
    const quotas = new UploadQuotas({
      default: { maxFiles: 5, maxBytes: 100 },
      users: { '@big:x': { maxBytes: null }, '@small:x': { maxFiles: 1 } },
    });
    expect(quotas.limitsFor('@big:x')).toMatchObject({ maxFiles: 5, maxBytes: null });
    expect(quotas.limitsFor('@small:x')).toMatchObject({ maxFiles: 1, maxBytes: 100 });
    expect(quotas.limitsFor('@other:x')).toMatchObject({ maxFiles: 5, maxBytes: 100 });
  });

  it('answers M_USER_LIMIT_EXCEEDED with info_uri when configured', async () => {
    const { store } = storeWith([]);
    const quotas = new UploadQuotas({ default: { maxFiles: 0 }, infoUri: 'https://example.org/q' });
    expect(await refusal(quotas.check(store, '@a:x', 0, 1))).toEqual({
      errcode: 'M_USER_LIMIT_EXCEEDED',
      status: 403,
      data: { info_uri: 'https://example.org/q' },
    });
  });

  it('refuses bad limits', () => {
    expect(() => new UploadQuotas({ default: { maxBytes: -1 } })).toThrow(TypeError);
    expect(() => new UploadQuotas({ default: { maxFiles: 1.5 } })).toThrow(TypeError);
    expect(() => new UploadQuotas({ default: { periodFiles: 1 } })).toThrow(/periodMs/);
    expect(() => new UploadQuotas({ default: { periodMs: 0 } })).toThrow(TypeError);
    expect(() => new UploadQuotas({ users: { '@a:x': { periodBytes: 1 } } })).toThrow(/periodMs/);
  });
});
