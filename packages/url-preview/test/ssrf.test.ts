import type { LookupFunction } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUrlPreviewer, isPreviewError, previewErrorToMatrixError, type PreviewError } from '@hsmedia/url-preview';
import { html, memoryImageStore, redirect, requester, startSite, type FixtureSite } from './helpers.js';

// Fixture sites on two loopback addresses (Linux routes all of 127/8 to lo):
// 127.0.0.1 may be allowed by a test's allow list, 127.0.0.2 never is.
let allowed: FixtureSite;
let refused: FixtureSite;
let ipv6: FixtureSite | undefined;

beforeAll(async () => {
  allowed = await startSite('127.0.0.1');
  refused = await startSite('127.0.0.2');
  try {
    ipv6 = await startSite('::1');
  } catch {
    ipv6 = undefined; // no IPv6 loopback here; the refusal is still asserted by its code
  }
  for (const site of [allowed, refused, ipv6]) site?.route('/', html('<title>reached</title>'));
});
afterAll(async () => {
  await Promise.all([allowed.close(), refused.close(), ipv6?.close()]);
});

async function failure(promise: Promise<unknown>): Promise<PreviewError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isPreviewError(error)) throw new Error(`expected a PreviewError, got ${String(error)}`);
  return error;
}

function connectionCounts(): number[] {
  return [allowed.connections, refused.connections, ipv6?.connections ?? 0];
}

/** A resolver that maps test names to loopback addresses without touching DNS. */
const testLookup: LookupFunction = ((hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
  const table: Record<string, string> = { 'fixture.test': '127.0.0.1', 'rebind.test': '127.0.0.2', 'v6.test': '::1' };
  const address = table[hostname];
  if (address === undefined) {
    callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), options.all === true ? [] : '');
    return;
  }
  const family = address.includes(':') ? 6 : 4;
  if (options.all === true) callback(null, [{ address, family }]);
  else callback(null, address, family);
}) as unknown as LookupFunction;

describe('with the default policy (no allow list)', () => {
  const previewer = () => createUrlPreviewer({ storeImage: memoryImageStore().storeImage, lookup: testLookup });

  it.each([
    ['IPv4 loopback', () => `http://127.0.0.1:${allowed.port}/`],
    ['another 127/8 address', () => `http://127.0.0.2:${refused.port}/`],
    ['IPv6 loopback', () => `http://[::1]:${ipv6?.port ?? allowed.port}/`],
    ['IPv4-mapped IPv6 loopback', () => `http://[::ffff:127.0.0.1]:${allowed.port}/`],
    ['a name resolving to loopback', () => `http://fixture.test:${allowed.port}/`],
    ['a name resolving to IPv6 loopback', () => `http://v6.test:${ipv6?.port ?? allowed.port}/`],
  ])('refuses %s without connecting', async (_what, url) => {
    const before = connectionCounts();
    const error = await failure(previewer().preview(url(), { requester }));
    expect(error.code).toBe('address_blocked');
    expect(previewErrorToMatrixError(error).toJSON()).toMatchObject({ errcode: 'M_UNKNOWN' });
    expect(previewErrorToMatrixError(error).httpStatus).toBe(403);
    expect(connectionCounts()).toEqual(before);
  });

  it('refuses localhost through the real resolver without connecting', async () => {
    const before = connectionCounts();
    const p = createUrlPreviewer({ storeImage: memoryImageStore().storeImage });
    const error = await failure(p.preview(`http://localhost:${allowed.port}/`, { requester }));
    expect(error.code).toBe('address_blocked');
    expect(connectionCounts()).toEqual(before);
    expect(allowed.requests).toHaveLength(0);
  });

  it('refuses the unspecified and IPv4-compatible forms too', async () => {
    const before = connectionCounts();
    for (const host of ['0.0.0.0', '[::]', '[::127.0.0.1]', '[::ffff:7f00:2]']) {
      const error = await failure(previewer().preview(`http://${host}:${allowed.port}/`, { requester }));
      expect(error.code).toBe('address_blocked');
    }
    expect(connectionCounts()).toEqual(before);
  });

  it('reports a name that does not resolve as a DNS failure (502)', async () => {
    const error = await failure(previewer().preview('http://nowhere.test/', { requester }));
    expect(error.code).toBe('dns_failure');
    expect(previewErrorToMatrixError(error).httpStatus).toBe(502);
  });
});

describe('with an allow list for 127.0.0.1/32 only', () => {
  const previewer = () =>
    createUrlPreviewer({ storeImage: memoryImageStore().storeImage, lookup: testLookup, ipRangeAllowList: ['127.0.0.1/32'] });

  it('reaches the allowed address, by literal and by name', async () => {
    expect(await previewer().preview(`http://127.0.0.1:${allowed.port}/`, { requester })).toEqual({ 'og:title': 'reached' });
    expect(await previewer().preview(`http://fixture.test:${allowed.port}/`, { requester })).toEqual({ 'og:title': 'reached' });
  });

  it('refuses a redirect from the allowed site to a loopback address that is not allowed', async () => {
    allowed.route('/to-127-0-0-2', redirect(`http://127.0.0.2:${refused.port}/`));
    allowed.route('/to-rebind', redirect(`http://rebind.test:${refused.port}/`));
    allowed.route('/to-v6', redirect(`http://[::1]:${ipv6?.port ?? refused.port}/`));
    const before = refused.connections;
    const beforeV6 = ipv6?.connections ?? 0;
    for (const path of ['/to-127-0-0-2', '/to-rebind', '/to-v6']) {
      const error = await failure(previewer().preview(`${allowed.origin}${path}`, { requester }));
      expect(error.code).toBe('address_blocked');
      expect(allowed.hits(path)).toBe(1);
    }
    expect(refused.connections).toBe(before);
    expect(refused.requests).toHaveLength(0);
    expect(ipv6?.connections ?? 0).toBe(beforeV6);
  });

  it('leaves out an og:image on a refused address without connecting to it', async () => {
    allowed.route('/img-elsewhere', html(`<head><title>t</title><meta property="og:image" content="http://127.0.0.2:${refused.port}/pic.png"></head>`));
    const before = refused.connections;
    expect(await previewer().preview(`${allowed.origin}/img-elsewhere`, { requester })).toEqual({ 'og:title': 't' });
    expect(refused.connections).toBe(before);
  });

  it('refuses an oEmbed discovery link on a refused address without connecting to it', async () => {
    allowed.route(
      '/embed-elsewhere',
      html(`<head><title>t</title><link rel="alternate" type="application/json+oembed" href="http://127.0.0.2:${refused.port}/oembed"></head>`),
    );
    const before = refused.connections;
    expect(await previewer().preview(`${allowed.origin}/embed-elsewhere`, { requester })).toEqual({ 'og:title': 't' });
    expect(refused.connections).toBe(before);
  });

  it('lets a deny entry win over a broader allow entry', async () => {
    const p = createUrlPreviewer({
      storeImage: memoryImageStore().storeImage,
      ipRangeAllowList: ['127.0.0.0/8'],
      ipRangeDenyList: ['127.0.0.2/32'],
    });
    const before = refused.connections;
    expect((await failure(p.preview(`http://127.0.0.2:${refused.port}/`, { requester }))).code).toBe('address_blocked');
    expect(refused.connections).toBe(before);
  });
});
