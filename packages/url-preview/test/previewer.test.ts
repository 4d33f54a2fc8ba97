import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createUrlPreviewer,
  isPreviewError,
  previewErrorToMatrixError,
  type PreviewError,
  type UrlPreviewerOptions,
} from '@hsmedia/url-preview';
import {
  bytes,
  encodeWindows1251,
  html,
  hugeBody,
  manualClock,
  memoryImageStore,
  pngHeader,
  redirect,
  requester,
  startSite,
  type FixtureSite,
  type MemoryImageStore,
} from './helpers.js';

let site: FixtureSite;
let store: MemoryImageStore;

beforeEach(async () => {
  site = await startSite('127.0.0.1');
  store = memoryImageStore();
});
afterEach(async () => {
  await site.close();
});

/** The fixture sites live on 127.0.0.1, so tests allow exactly that address. */
function previewer(options: Partial<UrlPreviewerOptions> = {}) {
  return createUrlPreviewer({ storeImage: store.storeImage, ipRangeAllowList: ['127.0.0.1/32'], ...options });
}

async function failure(promise: Promise<unknown>): Promise<PreviewError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isPreviewError(error)) throw new Error(`expected a PreviewError, got ${String(error)}`);
  return error;
}

const IMAGE = pngHeader(640, 480);

describe('HTML pages', () => {
  it('reads OpenGraph, resolves a relative og:image and stores the image as mxc', async () => {
    site.route(
      '/articles/a.html',
      html(`<!doctype html><html><head>
        <title>Fallback title</title>
        <meta property="og:title" content="Matrix Blog Post">
        <meta property="og:description" content="This is a really cool blog post &amp; more">
        <meta property="og:type" content="article">
        <meta property="og:url" content="https://blog.example/a">
        <meta property="og:site_name" content="Blog">
        <meta property="og:locale" content="en_GB">
        <meta property="og:image" content="../img/pic.png">
        <meta property="og:image:width" content="99999">
        </head><body><p>text</p></body></html>`),
    );
    site.route('/img/pic.png', bytes(IMAGE, 'image/png'));
    const og = await previewer().preview(`${site.origin}/articles/a.html`, { requester });
    expect(og).toEqual({
      'og:title': 'Matrix Blog Post',
      'og:description': 'This is a really cool blog post & more',
      'og:type': 'article',
      'og:url': 'https://blog.example/a',
      'og:site_name': 'Blog',
      'og:locale': 'en_GB',
      'og:image': 'mxc://test.example/preview1',
      'og:image:type': 'image/png',
      'og:image:width': 640,
      'og:image:height': 480,
      'matrix:image:size': IMAGE.byteLength,
    });
    expect(site.hits('/img/pic.png')).toBe(1);
    expect(store.stored[0]!.bytes).toEqual(IMAGE);
    expect(store.stored[0]!.userId).toBe(requester.userId);
  });

  it('falls back to <title>, meta description and the largest suitable <img> when there is no OpenGraph', async () => {
    site.route(
      '/plain',
      html(`<html><head><title>  Plain   page </title><meta name="description" content="Described"></head>
        <body><img src="/pixel.gif" width="1" height="1"><img src="/small.png" width="50" height="50">
        <img src="/big.png" width="800" height="600"><p>First paragraph.</p></body></html>`),
    );
    site.route('/big.png', bytes(IMAGE, 'image/png'));
    const og = await previewer().preview(`${site.origin}/plain`, { requester });
    expect(og['og:title']).toBe('Plain page');
    expect(og['og:description']).toBe('Described');
    expect(og['og:image']).toBe('mxc://test.example/preview1');
    expect(site.hits('/pixel.gif')).toBe(0);
    expect(site.hits('/small.png')).toBe(0);
  });

  it('uses the first paragraphs as the description when nothing else describes the page', async () => {
    site.route('/para', html(`<html><head><title>T</title></head><body><nav><p>Menu</p></nav><p>Hello <b>world</b>.</p><p>Second.</p></body></html>`));
    const og = await previewer().preview(`${site.origin}/para`, { requester });
    expect(og).toEqual({ 'og:title': 'T', 'og:description': 'Hello world. Second.' });
  });

  it('gives an empty object for a page with nothing to show', async () => {
    site.route('/empty', html('<html><head></head><body></body></html>'));
    expect(await previewer().preview(`${site.origin}/empty`, { requester })).toEqual({});
  });

  it('decodes a windows-1251 page declared in the Content-Type header', async () => {
    site.route('/cp1251', bytes(encodeWindows1251('<html><head><title>Привет, мир</title></head></html>'), 'text/html; charset=windows-1251'));
    const og = await previewer().preview(`${site.origin}/cp1251`, { requester });
    expect(og['og:title']).toBe('Привет, мир');
  });

  it('decodes a windows-1251 page declared only in <meta>', async () => {
    site.route(
      '/cp1251-meta',
      bytes(
        encodeWindows1251('<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1251"><meta property="og:description" content="Ёлка и ёж"></head></html>'),
        'text/html',
      ),
    );
    const og = await previewer().preview(`${site.origin}/cp1251-meta`, { requester });
    expect(og['og:description']).toBe('Ёлка и ёж');
  });

  it('lets a UTF-8 byte order mark win over a wrong header charset', async () => {
    const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('<title>Grüße</title>', 'utf8')]);
    site.route('/bom', bytes(new Uint8Array(body), 'text/html; charset=windows-1251'));
    const og = await previewer().preview(`${site.origin}/bom`, { requester });
    expect(og['og:title']).toBe('Grüße');
  });

  it('stops reading a huge page once the head is read, and never downloads the rest', async () => {
    const body = hugeBody(
      '<html><head><meta property="og:title" content="Huge"><meta property="og:description" content="d"><meta property="og:image" content="/pic.png"></head><body>',
      64 * 1024 * 1024,
    );
    site.route('/huge', body);
    site.route('/pic.png', bytes(IMAGE, 'image/png'));
    const og = await previewer({ maxPageBytes: 1024 * 1024 }).preview(`${site.origin}/huge`, { requester });
    expect(og['og:title']).toBe('Huge');
    expect(og['og:image']).toBe('mxc://test.example/preview1');
    expect(body.finished()).toBe(false);
  });

  it('respects the byte cap on a huge head and still uses what it parsed', async () => {
    const body = hugeBody('<html><head><title>Capped</title><!-- ', 64 * 1024 * 1024);
    site.route('/huge-head', body);
    const og = await previewer({ maxPageBytes: 256 * 1024 }).preview(`${site.origin}/huge-head`, { requester });
    expect(og).toEqual({ 'og:title': 'Capped' });
    expect(body.finished()).toBe(false);
  });

  it('times out on a page that never finishes', async () => {
    site.route('/slow', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.write('<html><head><title>slow');
    });
    const error = await failure(previewer({ timeoutMs: 300 }).preview(`${site.origin}/slow`, { requester }));
    expect(error.code).toBe('timeout');
    expect(previewErrorToMatrixError(error).httpStatus).toBe(504);
  });

  it('times out on a server that never answers', async () => {
    site.route('/silent', () => {});
    const error = await failure(previewer({ timeoutMs: 300 }).preview(`${site.origin}/silent`, { requester }));
    expect(error.code).toBe('timeout');
  });

  it('leaves out an og:image that is a decompression bomb, without storing it', async () => {
    site.route('/bomb-page', html('<head><meta property="og:title" content="Bomb"><meta property="og:image" content="/bomb.png"></head>'));
    site.route('/bomb.png', bytes(pngHeader(100_000, 100_000), 'image/png'));
    const og = await previewer().preview(`${site.origin}/bomb-page`, { requester });
    expect(og).toEqual({ 'og:title': 'Bomb' });
    expect(site.hits('/bomb.png')).toBe(1);
    expect(store.stored).toHaveLength(0);
  });

  it('leaves out an og:image that fails, is not an image, or is too large in bytes', async () => {
    site.route('/broken', html('<head><meta property="og:title" content="B"><meta property="og:image" content="/missing.png"></head>'));
    site.route('/svg', html('<head><meta property="og:title" content="S"><meta property="og:image" content="/x.svg"></head>'));
    site.route('/x.svg', bytes(new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"></svg>'), 'image/svg+xml'));
    site.route('/big', html('<head><meta property="og:title" content="L"><meta property="og:image" content="/big.png"></head>'));
    site.route('/big.png', bytes(new Uint8Array(Buffer.concat([Buffer.from(IMAGE), Buffer.alloc(4096)])), 'image/png'));
    const p = previewer({ maxImageBytes: 1024 });
    expect(await p.preview(`${site.origin}/broken`, { requester })).toEqual({ 'og:title': 'B' });
    expect(await p.preview(`${site.origin}/svg`, { requester })).toEqual({ 'og:title': 'S' });
    expect(await p.preview(`${site.origin}/big`, { requester })).toEqual({ 'og:title': 'L' });
    expect(store.stored).toHaveLength(0);
  });

  it('caps an image without Content-Length while streaming it into the store', async () => {
    site.route('/chunked-page', html('<head><meta property="og:title" content="C"><meta property="og:image" content="/chunked.png"></head>'));
    site.route('/chunked.png', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'image/png' });
      res.write(IMAGE);
      res.end(Buffer.alloc(8192));
    });
    const og = await previewer({ maxImageBytes: 4096 }).preview(`${site.origin}/chunked-page`, { requester });
    expect(og).toEqual({ 'og:title': 'C' });
    expect(store.stored).toHaveLength(0);
  });

  it('sends the configured User-Agent and Accept-Language, and no compression', async () => {
    site.route('/headers', html('<title>h</title>'));
    await previewer({ userAgent: 'TestBot/1.0', acceptLanguage: 'de-DE, en;q=0.5' }).preview(`${site.origin}/headers`, { requester });
    const headers = site.requests[0]!.headers;
    expect(headers['user-agent']).toBe('TestBot/1.0');
    expect(headers['accept-language']).toBe('de-DE, en;q=0.5');
    expect(headers['accept-encoding']).toBe('identity');
    expect(headers['authorization']).toBeUndefined();
  });
});

describe('oEmbed', () => {
  it('follows a discovery link, and the oEmbed data wins over the page tags', async () => {
    site.route(
      '/video',
      html(`<head><meta property="og:title" content="Page title"><meta property="og:description" content="Page description">
        <link rel="alternate" type="application/json+oembed" href="/oembed?url=x&amp;format=json"></head>`),
    );
    site.route(
      '/oembed',
      bytes(
        new TextEncoder().encode(
          JSON.stringify({
            version: '1.0',
            type: 'video',
            title: 'oEmbed title',
            provider_name: 'Fixture Tube',
            thumbnail_url: '/thumb.png',
            html: '<iframe src="x"></iframe>',
          }),
        ),
        'application/json',
      ),
    );
    site.route('/thumb.png', bytes(IMAGE, 'image/png'));
    const og = await previewer().preview(`${site.origin}/video`, { requester });
    expect(og).toMatchObject({
      'og:title': 'oEmbed title',
      'og:description': 'Page description',
      'og:site_name': 'Fixture Tube',
      'og:type': 'video.other',
      'og:image': 'mxc://test.example/preview1',
    });
    expect(site.requests.map((r) => r.path)).toEqual(['/video', '/oembed?url=x&format=json', '/thumb.png']);
  });

  it('keeps the page preview when the discovery link fails, and can be turned off', async () => {
    site.route('/video', html('<head><title>Page</title><link rel="alternate" type="application/json+oembed" href="/nope"></head>'));
    expect(await previewer().preview(`${site.origin}/video`, { requester })).toEqual({ 'og:title': 'Page' });
    expect(site.hits('/nope')).toBe(1);
    const off = await previewer({ oEmbed: { discovery: false } }).preview(`${site.origin}/video`, { requester });
    expect(off).toEqual({ 'og:title': 'Page' });
    expect(site.hits('/nope')).toBe(1);
  });

  it('asks a configured provider directly, without fetching the page', async () => {
    site.route(
      '/provider',
      bytes(
        new TextEncoder().encode(JSON.stringify({ type: 'rich', title: 'Song', author_name: 'Band', html: '<p>Listen &amp; enjoy</p><script>x()</script>' })),
        'application/json',
      ),
    );
    const p = previewer({
      oEmbed: {
        providers: [{ provider_name: 'Local', endpoints: [{ schemes: [`http://127.0.0.1:${site.port}/watch/*`], url: `${site.origin}/provider` }] }],
      },
    });
    const og = await p.preview(`${site.origin}/watch/123`, { requester });
    expect(og).toEqual({ 'og:title': 'Song', 'og:description': 'Listen & enjoy' });
    expect(site.hits('/watch/123')).toBe(0);
    const asked = new URL(site.requests[0]!.path, site.origin);
    expect(asked.searchParams.get('url')).toBe(`${site.origin}/watch/123`);
    expect(asked.searchParams.get('format')).toBe('json');
  });

  it('falls back to the page when the provider fails', async () => {
    site.route('/watch/1', html('<title>Fallback</title>'));
    const p = previewer({
      oEmbed: { providers: [{ provider_name: 'Down', endpoints: [{ schemes: [`${site.origin}/watch/*`], url: `${site.origin}/down` }] }] },
    });
    expect(await p.preview(`${site.origin}/watch/1`, { requester })).toEqual({ 'og:title': 'Fallback' });
  });
});

describe('other content types', () => {
  it('previews a URL that is itself an image', async () => {
    site.route('/photo', bytes(IMAGE, 'image/png', { 'Content-Disposition': 'inline; filename="holiday.png"' }));
    const og = await previewer().preview(`${site.origin}/photo`, { requester });
    expect(og).toEqual({
      'og:title': 'holiday.png',
      'og:image': 'mxc://test.example/preview1',
      'og:image:type': 'image/png',
      'og:image:width': 640,
      'og:image:height': 480,
      'matrix:image:size': IMAGE.byteLength,
    });
  });

  it('stores the probed type, not the claimed one', async () => {
    site.route('/liar.jpg', bytes(IMAGE, 'image/jpeg'));
    const og = await previewer().preview(`${site.origin}/liar.jpg`, { requester });
    expect(og['og:image:type']).toBe('image/png');
    expect(store.stored[0]!.contentType).toBe('image/png');
  });

  it('refuses an image URL that is a decompression bomb or too many bytes', async () => {
    site.route('/bomb.png', bytes(pngHeader(100_000, 100_000), 'image/png'));
    const bomb = await failure(previewer().preview(`${site.origin}/bomb.png`, { requester }));
    expect(bomb.code).toBe('too_large');
    expect(previewErrorToMatrixError(bomb).toJSON()).toMatchObject({ errcode: 'M_TOO_LARGE' });
    expect(previewErrorToMatrixError(bomb).httpStatus).toBe(502);
    site.route('/big.png', bytes(IMAGE, 'image/png'));
    const big = await failure(previewer({ maxImageBytes: 10 }).preview(`${site.origin}/big.png`, { requester }));
    expect(big.code).toBe('too_large');
    expect(store.stored).toHaveLength(0);
  });

  it('refuses other content types with a clear Matrix error', async () => {
    site.route('/doc.pdf', bytes(new TextEncoder().encode('%PDF-1.4'), 'application/pdf'));
    const error = await failure(previewer().preview(`${site.origin}/doc.pdf`, { requester }));
    expect(error.code).toBe('unsupported_content_type');
    const matrix = previewErrorToMatrixError(error);
    expect(matrix.httpStatus).toBe(502);
    expect(matrix.toJSON()).toEqual({
      errcode: 'M_UNKNOWN',
      error: "Requested file's content type not allowed for this operation: application/pdf",
    });
  });

  it('reports an error status of the site as 502', async () => {
    const error = await failure(previewer().preview(`${site.origin}/missing`, { requester }));
    expect(error.code).toBe('upstream_status');
    expect(error.upstreamStatus).toBe(404);
    expect(previewErrorToMatrixError(error).httpStatus).toBe(502);
  });

  it('reports a refused connection as unreachable', async () => {
    const port = site.port;
    await site.close();
    const error = await failure(previewer().preview(`http://127.0.0.1:${port}/`, { requester }));
    expect(error.code).toBe('unreachable');
    site = await startSite('127.0.0.1');
  });
});

describe('redirects', () => {
  it('follows a redirect chain and resolves relative URLs against the final page', async () => {
    site.route('/r1', redirect('/r2', 301));
    site.route('/r2', redirect(`${site.origin}/dir/r3`, 307));
    site.route('/dir/r3', redirect('page', 303));
    site.route('/dir/page', html('<head><meta property="og:title" content="End"><meta property="og:image" content="pic.png"></head>'));
    site.route('/dir/pic.png', bytes(IMAGE, 'image/png'));
    const og = await previewer().preview(`${site.origin}/r1`, { requester });
    expect(og['og:title']).toBe('End');
    expect(og['og:image']).toBe('mxc://test.example/preview1');
  });

  it('gives up after maxRedirects', async () => {
    site.route('/r1', redirect('/r2'));
    site.route('/r2', redirect('/r3'));
    site.route('/r3', redirect('/page'));
    site.route('/page', html('<title>x</title>'));
    const error = await failure(previewer({ maxRedirects: 2 }).preview(`${site.origin}/r1`, { requester }));
    expect(error.code).toBe('too_many_redirects');
    expect(site.hits('/page')).toBe(0);
  });

  it('refuses a redirect loop and a redirect to another scheme', async () => {
    site.route('/loop', redirect('/loop'));
    expect((await failure(previewer().preview(`${site.origin}/loop`, { requester }))).code).toBe('too_many_redirects');
    site.route('/file', redirect('file:///etc/passwd'));
    expect((await failure(previewer().preview(`${site.origin}/file`, { requester }))).code).toBe('invalid_url');
  });
});

describe('URL deny rules', () => {
  it('refuses a denied URL before fetching, and a redirect to one', async () => {
    site.route('/to-private', redirect('/private/x'));
    site.route('/private/x', html('<title>secret</title>'));
    const p = previewer({ urlDenyList: [{ path: '/private*' }, { url: '^https?://[^/]*\\.onion(/|$)' }] });
    const direct = await failure(p.preview(`${site.origin}/private/x`, { requester }));
    expect(direct.code).toBe('url_denied');
    expect(previewErrorToMatrixError(direct).httpStatus).toBe(403);
    const redirected = await failure(p.preview(`${site.origin}/to-private`, { requester }));
    expect(redirected.code).toBe('url_denied');
    expect((await failure(p.preview('http://abc.onion/', { requester }))).code).toBe('url_denied');
    expect(site.hits('/private/x')).toBe(0);
    expect(site.hits('/to-private')).toBe(1);
  });
});

describe('invalid URLs', () => {
  it.each(['not a url', 'ftp://127.0.0.1/x', 'javascript:alert(1)', 'file:///etc/passwd', 'http://user:pw@127.0.0.1/', '', `http://a.example/${'x'.repeat(5000)}`])(
    'refuses %j with 400 M_INVALID_PARAM',
    async (url) => {
      const error = await failure(previewer().preview(url, { requester }));
      expect(error.code).toBe('invalid_url');
      expect(previewErrorToMatrixError(error).toJSON()).toMatchObject({ errcode: 'M_INVALID_PARAM' });
      expect(site.connections).toBe(0);
    },
  );
});

describe('caching and single flight', () => {
  it('fetches once for two concurrent previews, then serves from the cache until the TTL ends', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    site.route('/gated', async (_req, res) => {
      await gate;
      res.writeHead(200, { 'Content-Type': 'text/html' }).end('<title>Once</title>');
    });
    const clock = manualClock();
    const p = previewer({ clock, cacheTtlMs: 60_000 });
    const first = p.preview(`${site.origin}/gated`, { requester });
    const second = p.preview(`${site.origin}/gated#fragment`, { requester });
    await new Promise((resolve) => setTimeout(resolve, 50));
    release();
    expect(await first).toEqual({ 'og:title': 'Once' });
    expect(await second).toEqual({ 'og:title': 'Once' });
    expect(site.hits('/gated')).toBe(1);
    await p.preview(`${site.origin}/gated`, { requester, ts: 1 });
    expect(site.hits('/gated')).toBe(1);
    clock.advance(60_001);
    await p.preview(`${site.origin}/gated`, { requester });
    expect(site.hits('/gated')).toBe(2);
  });

  it('returns a copy: a caller mutating its result does not change the cache', async () => {
    site.route('/page', html('<title>Copy</title>'));
    const p = previewer();
    const first = await p.preview(`${site.origin}/page`, { requester });
    first['og:title'] = 'changed';
    expect(await p.preview(`${site.origin}/page`, { requester })).toEqual({ 'og:title': 'Copy' });
  });

  it('caches failures briefly', async () => {
    const clock = manualClock();
    const p = previewer({ clock, errorCacheTtlMs: 5_000 });
    expect((await failure(p.preview(`${site.origin}/gone`, { requester }))).code).toBe('upstream_status');
    expect((await failure(p.preview(`${site.origin}/gone`, { requester }))).code).toBe('upstream_status');
    expect(site.hits('/gone')).toBe(1);
    clock.advance(5_001);
    site.route('/gone', html('<title>Back</title>'));
    expect(await p.preview(`${site.origin}/gone`, { requester })).toEqual({ 'og:title': 'Back' });
    expect(site.hits('/gone')).toBe(2);
  });

  it('stops waiting when the caller aborts, while the shared fetch completes into the cache', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    site.route('/gated', async (_req, res) => {
      await gate;
      res.writeHead(200, { 'Content-Type': 'text/html' }).end('<title>Later</title>');
    });
    const p = previewer();
    const controller = new AbortController();
    const waiting = p.preview(`${site.origin}/gated`, { requester, signal: controller.signal });
    const other = p.preview(`${site.origin}/gated`, { requester });
    controller.abort(new Error('client went away'));
    await expect(waiting).rejects.toThrow('client went away');
    release();
    expect(await other).toEqual({ 'og:title': 'Later' });
    expect(await p.preview(`${site.origin}/gated`, { requester })).toEqual({ 'og:title': 'Later' });
    expect(site.hits('/gated')).toBe(1);
  });
});
