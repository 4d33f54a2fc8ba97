/**
 * Every media test of matrix-org/complement, mirrored against this server (see deployment.ts for
 * the servers). Each `describe` is one Complement test function, each `it` one of its subtests,
 * named as in Complement; the comment above each cites repository, file and test.
 *
 * Complement runs its "deprecated endpoint" subtests (`/_matrix/media/v3/download`,
 * `/_matrix/media/v3/thumbnail`) only on homeservers that still serve unauthenticated media
 * (`runtime.SkipIf(t, runtime.Synapse)`); they run here against `hs3`, which opted out of the
 * legacy freeze, and the freeze itself is checked in synapse-media.test.ts.
 */
import { createServer } from 'node:http';
import { parseContentDisposition } from '@hsmedia/media-core';
import { decodeMultipart } from '@hsmedia/multipart';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  answerError,
  answerMultipart,
  clientDownloadPath,
  federationGet,
  fixtures,
  get,
  legacyDownloadPath,
  matrixError,
  splitMxc,
  startDeployment,
  uploadContent,
  type Deployment,
  type Homeserver,
} from './deployment.js';

let d: Deployment;

beforeAll(async () => {
  d = await startDeployment();
}, 60_000);

afterAll(async () => {
  await d?.close();
});

async function bytesOf(res: Response): Promise<Buffer> {
  return Buffer.from(await res.arrayBuffer());
}

/** Complement `CSAPI.DownloadContent` / `DownloadContentAuthenticated`: 200 required, bytes and Content-Type. */
async function downloadContent(hs: Homeserver, uri: string, authenticated: boolean): Promise<{ body: Buffer; contentType: string | null }> {
  const res = await get(hs, authenticated ? clientDownloadPath(uri) : legacyDownloadPath(uri));
  expect(res.status).toBe(200);
  return { body: await bytesOf(res), contentType: res.headers.get('content-type') };
}

/**
 * Complement's `downloadForFilename` (tests/media_filename_test.go): the file name and whether the
 * answer is an attachment, from `Content-Disposition` (which must be `inline` or `attachment`).
 */
async function downloadForFilename(
  hs: Homeserver,
  uri: string,
  diffName: string,
  authenticated: boolean,
): Promise<{ filename: string; isAttachment: boolean }> {
  const path = authenticated ? clientDownloadPath(uri, diffName) : legacyDownloadPath(uri, diffName);
  const res = await get(hs, path);
  expect(res.status).toBe(200);
  await res.arrayBuffer();
  const parsed = parseContentDisposition(res.headers.get('content-disposition') ?? '');
  expect(parsed).not.toBeNull();
  expect(['inline', 'attachment']).toContain(parsed!.type);
  return { filename: parsed!.filename ?? '', isAttachment: parsed!.type === 'attachment' };
}

/** Complement's `fetchAndValidateThumbnail` (tests/media_thumbnail_test.go): 32x32 scale, a decodable PNG or JPEG. */
async function fetchAndValidateThumbnail(hs: Homeserver, uri: string, authenticated: boolean): Promise<void> {
  const [origin, mediaId] = splitMxc(uri);
  const prefix = authenticated ? '/_matrix/client/v1/media/thumbnail' : '/_matrix/media/v3/thumbnail';
  const res = await get(hs, `${prefix}/${origin}/${mediaId}?width=32&height=32&method=scale`);
  expect(res.status).toBe(200);
  const mimeType = (res.headers.get('content-type') ?? '').split(';')[0];
  expect(['image/png', 'image/jpeg', 'image/jpg']).toContain(mimeType);
  const meta = await sharp(await bytesOf(res)).metadata();
  expect(meta.format).toBe(mimeType === 'image/png' ? 'png' : 'jpeg');
}

// matrix-org/complement tests/csapi/apidoc_content_test.go TestContent
// ("sytest: POST /media/v3/upload can create an upload", "GET /media/v3/download can fetch the value again").
describe('TestContent', () => {
  it('uploads and downloads again over /_matrix/media/v3/download', async () => {
    const uri = await uploadContent(d.hs3, fixtures.matrixPng, 'test.png', 'image/png');
    const { body, contentType } = await downloadContent(d.hs3, uri, false);
    expect(body.equals(fixtures.matrixPng)).toBe(true);
    expect(contentType).toBe('image/png');
  });
});

// matrix-org/complement tests/csapi/apidoc_content_test.go TestContentCSAPIMediaV1
describe('TestContentCSAPIMediaV1', () => {
  it('downloads over /_matrix/client/v1/media/download with the type verbatim, 401 without a token', async () => {
    const uri = await uploadContent(d.hs1, fixtures.matrixPng, 'test.png', 'img/png');
    const { body, contentType } = await downloadContent(d.hs1, uri, true);
    expect(body.equals(fixtures.matrixPng)).toBe(true);
    expect(contentType).toBe('img/png');
    const anonymous = await get(d.hs1, clientDownloadPath(uri), { token: null });
    expect(anonymous.status).toBe(401);
    expect((await matrixError(anonymous)).errcode).toBe('M_MISSING_TOKEN');
  });
});

// matrix-org/complement tests/federation_media_content_test.go TestContentMediaV1
describe('TestContentMediaV1', () => {
  it('hs2 downloads media uploaded to hs1, bytes and type verbatim', async () => {
    const uri = await uploadContent(d.hs1, fixtures.matrixPng, 'test.png', 'img/png');
    const { body, contentType } = await downloadContent(d.hs2, uri, true);
    expect(body.equals(fixtures.matrixPng)).toBe(true);
    expect(contentType).toBe('img/png');
  });
});

// matrix-org/complement tests/csapi/media_async_uploads_test.go TestAsyncUpload
describe('TestAsyncUpload', () => {
  async function createMedia(hs: Homeserver): Promise<string> {
    const res = await fetch(`${hs.url}/_matrix/media/v1/create`, { method: 'POST', headers: { Authorization: `Bearer ${hs.token}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { content_uri: string; unused_expires_at: number };
    expect(body.content_uri).toMatch(/^mxc:\/\//);
    return body.content_uri;
  }

  async function asyncUploadMedia(hs: Homeserver): Promise<string> {
    const uri = await createMedia(hs);
    const [origin, mediaId] = splitMxc(uri);
    const res = await fetch(`${hs.url}/_matrix/media/v3/upload/${origin}/${mediaId}?filename=test.png`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${hs.token}`, 'Content-Type': 'image/png' },
      body: fixtures.matrixPng,
    });
    expect(res.status).toBe(200);
    return uri;
  }

  it('Create media', async () => {
    await createMedia(d.hs1);
  });

  it('Not yet uploaded', async () => {
    // Asked on the deprecated endpoint of a frozen server, as Complement does against Synapse: the
    // wait for the upload comes before the freeze check, so the answer is 504, not 404.
    const uri = await createMedia(d.hs1);
    const res = await get(d.hs1, legacyDownloadPath(uri));
    expect(res.status).toBe(504);
    const body = await matrixError(res);
    expect(body.errcode).toBe('M_NOT_YET_UPLOADED');
    expect(body.error).toEqual(expect.any(String));
  });

  // The same subtest seen through federation (not in Complement, whose async test uses one server):
  // the origin answers 504 M_NOT_YET_UPLOADED and our client gets it as the origin meant it,
  // with the same status and errcode (https://spec.matrix.org/v1.12/client-server-api/#get_matrixclientv1mediadownloadservernamemediaid).
  it('Not yet uploaded (media of another server)', async () => {
    d.peer.onFederationDownload('pendingRemote', (_req, res) => answerError(res, 504, 'M_NOT_YET_UPLOADED'));
    const res = await get(d.hs2, `/_matrix/client/v1/media/download/${d.peer.name}/pendingRemote`);
    expect(res.status).toBe(504);
    expect((await matrixError(res)).errcode).toBe('M_NOT_YET_UPLOADED');
  });

  it('Upload media', async () => {
    await asyncUploadMedia(d.hs1);
  });

  it('Cannot upload to a media ID that has already been uploaded to', async () => {
    const uri = await asyncUploadMedia(d.hs1);
    const [origin, mediaId] = splitMxc(uri);
    const res = await fetch(`${d.hs1.url}/_matrix/media/v3/upload/${origin}/${mediaId}`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${d.hs1.token}`, 'Content-Type': 'image/png' },
      body: fixtures.matrixPng,
    });
    expect(res.status).toBe(409);
    const body = await matrixError(res);
    expect(body.errcode).toBe('M_CANNOT_OVERWRITE_MEDIA');
    expect(body.error).toEqual(expect.any(String));
  });

  it('Download media', async () => {
    const uri = await asyncUploadMedia(d.hs1);
    const { body, contentType } = await downloadContent(d.hs1, uri, true);
    expect(body.equals(fixtures.matrixPng)).toBe(true);
    expect(contentType).toBe('image/png');
  });

  it('Download media over _matrix/client/v1/media/download', async () => {
    const uri = await asyncUploadMedia(d.hs1);
    const { body, contentType } = await downloadContent(d.hs1, uri, true);
    expect(body.equals(fixtures.matrixPng)).toBe(true);
    expect(contentType).toBe('image/png');
  });
});

// matrix-org/complement tests/csapi/media_misc_test.go TestMediaConfig ("sytest: Can read configuration endpoint")
describe('TestMediaConfig', () => {
  it('GET /_matrix/media/v3/config has a numeric m.upload.size (and so does the v1 endpoint)', async () => {
    for (const path of ['/_matrix/media/v3/config', '/_matrix/client/v1/media/config']) {
      const res = await get(d.hs1, path);
      expect(res.status).toBe(200);
      expect((await res.json()) as Record<string, unknown>).toMatchObject({ 'm.upload.size': expect.any(Number) });
    }
  });
});

// matrix-org/complement tests/csapi/media_misc_test.go TestRoomImageRoundtrip: rooms and /messages are the
// homeserver's; the media half of it (an uploaded image's mxc:// URI is fetchable by the room's
// members, here over federation too) is what a media server owns.
describe('TestRoomImageRoundtrip', () => {
  it('an uploaded image gets an mxc:// URI of this server that resolves locally and remotely', async () => {
    const uri = await uploadContent(d.hs1, fixtures.matrixPng, 'test.png', 'image/png');
    expect(splitMxc(uri)[0]).toBe('hs1');
    expect((await downloadContent(d.hs1, uri, true)).body.equals(fixtures.matrixPng)).toBe(true);
    expect((await downloadContent(d.hs2, uri, true)).body.equals(fixtures.matrixPng)).toBe(true);
  });
});

// matrix-org/complement tests/media_filename_test.go TestMediaFilenames
describe('TestMediaFilenames', () => {
  const asciiFileName = 'ascii';
  const unicodeFileName = '\u{1F414}';

  // --- ASCII ---
  it('Can upload with ASCII file name', async () => {
    expect(await uploadContent(d.hs1, fixtures.matrixPng, asciiFileName, 'image/png')).toMatch(/^mxc:\/\/hs1\//);
  });

  for (const filename of ['ascii', 'name with spaces', 'name;with;semicolons']) {
    it(`Can download file '${filename}'`, async () => {
      const uri = await uploadContent(d.hs3, fixtures.matrixPng, filename, 'image/png');
      expect((await downloadForFilename(d.hs3, uri, '', false)).filename).toBe(filename);
    });

    it(`Can download file '${filename}' over /_matrix/client/v1/media/download`, async () => {
      const uri = await uploadContent(d.hs1, fixtures.matrixPng, filename, 'image/png');
      expect((await downloadForFilename(d.hs1, uri, '', true)).filename).toBe(filename);
    });
  }

  it('Can download specifying a different ASCII file name', async () => {
    const uri = await uploadContent(d.hs3, fixtures.matrixPng, asciiFileName, 'image/png');
    expect((await downloadForFilename(d.hs3, uri, 'file.png', false)).filename).toBe('file.png');
  });

  it('Can download specifying a different ASCII file name over _matrix/client/v1/media/download', async () => {
    const uri = await uploadContent(d.hs1, fixtures.matrixPng, asciiFileName, 'image/png');
    expect((await downloadForFilename(d.hs1, uri, 'file.png', true)).filename).toBe('file.png');
  });

  // --- Unicode ---
  it('Can upload with Unicode file name', async () => {
    expect(await uploadContent(d.hs1, fixtures.matrixPng, unicodeFileName, 'image/png')).toMatch(/^mxc:\/\/hs1\//);
  });

  it('Can download specifying a different Unicode file name', async () => {
    const uri = await uploadContent(d.hs3, fixtures.matrixPng, unicodeFileName, 'image/png');
    expect((await downloadForFilename(d.hs3, uri, '\u2615', false)).filename).toBe('\u2615');
  });

  it('Can download specifying a different Unicode file name over _matrix/client/v1/media/download', async () => {
    const uri = await uploadContent(d.hs1, fixtures.matrixPng, unicodeFileName, 'image/png');
    expect((await downloadForFilename(d.hs1, uri, '\u2615', true)).filename).toBe('\u2615');
  });

  it('Can download with Unicode file name locally', async () => {
    const uri = await uploadContent(d.hs3, fixtures.matrixPng, unicodeFileName, 'image/png');
    expect((await downloadForFilename(d.hs3, uri, '', false)).filename).toBe(unicodeFileName);
  });

  it('Can download with Unicode file name locally over _matrix/client/v1/media/download', async () => {
    const uri = await uploadContent(d.hs1, fixtures.matrixPng, unicodeFileName, 'image/png');
    expect((await downloadForFilename(d.hs1, uri, '', true)).filename).toBe(unicodeFileName);
  });

  it('Can download with Unicode file name over federation', async () => {
    // hs3 (unfrozen) fetches hs4's media (unfrozen too) over federation and serves it on the deprecated endpoint.
    const uri = await uploadContent(d.hs4, fixtures.matrixPng, unicodeFileName, 'image/png');
    expect((await downloadForFilename(d.hs3, uri, '', false)).filename).toBe(unicodeFileName);
  });

  it('Can download with Unicode file name over federation via _matrix/client/v1/media/download', async () => {
    const uri = await uploadContent(d.hs1, fixtures.matrixPng, unicodeFileName, 'image/png');
    expect((await downloadForFilename(d.hs2, uri, '', true)).filename).toBe(unicodeFileName);
  });

  // Complement runs the Content-Disposition subtests on Synapse and conduwuit only ("not part of the
  // Matrix spec"); since spec v1.12 the inline allow-list is, and we follow it on every endpoint.
  it('Will serve safe media types as inline', async () => {
    const uri = await uploadContent(d.hs4, fixtures.matrixPng, '', 'image/png');
    expect((await downloadForFilename(d.hs3, uri, '', false)).isAttachment).toBe(false);
  });

  it('Will serve safe media types as inline via _matrix/client/v1/media/download', async () => {
    const uri = await uploadContent(d.hs1, fixtures.matrixPng, '', 'image/png');
    expect((await downloadForFilename(d.hs2, uri, '', true)).isAttachment).toBe(false);
  });

  it('Will serve safe media types with parameters as inline', async () => {
    const uri = await uploadContent(d.hs4, fixtures.matrixPng, '', 'Text/Plain; charset=utf-8');
    expect((await downloadForFilename(d.hs3, uri, '', false)).isAttachment).toBe(false);
  });

  it('Will serve safe media types with parameters as inline via _matrix/client/v1/media/download', async () => {
    const uri = await uploadContent(d.hs1, fixtures.matrixPng, '', 'Text/Plain; charset=utf-8');
    expect((await downloadForFilename(d.hs2, uri, '', true)).isAttachment).toBe(false);
  });

  it('Will serve unsafe media types as attachments', async () => {
    const uri = await uploadContent(d.hs4, fixtures.matrixSvg, '', 'image/svg');
    expect((await downloadForFilename(d.hs3, uri, '', false)).isAttachment).toBe(true);
  });

  it('Will serve unsafe media types as attachments via _matrix/client/v1/media/download', async () => {
    const uri = await uploadContent(d.hs1, fixtures.matrixSvg, '', 'image/svg');
    expect((await downloadForFilename(d.hs2, uri, '', true)).isAttachment).toBe(true);
  });
});

// matrix-org/complement tests/media_nofilename_test.go TestMediaWithoutFileName
describe('TestMediaWithoutFileName', () => {
  const file = Buffer.from('Hello World!');
  const remoteFile = Buffer.from('Hello from the other side');

  beforeAll(() => {
    // Complement's scripted server (federation.HandleMediaRequests) answers the legacy routes with a
    // bare body, as ours does: a request on our deprecated endpoint goes to the remote's deprecated
    // endpoint. It answers the v1 federation route with a bare body too; the spec
    // (https://spec.matrix.org/v1.12/server-server-api/#get_matrixfederationv1mediadownloadmediaid)
    // requires multipart/mixed there, and we (like Synapse) refuse anything else, so ours answers to spec.
    d.peer.onLegacyDownload('PlainTextFile', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end(remoteFile);
    });
    d.peer.onFederationDownload('PlainTextFile', (_req, res) => answerMultipart(res, remoteFile, { contentType: 'text/plain' }));
  });

  it('Can upload without a file name', async () => {
    expect(await uploadContent(d.hs3, file, '', 'text/plain')).toMatch(/^mxc:\/\//);
  });

  it('Can download without a file name locally', async () => {
    const uri = await uploadContent(d.hs3, file, '', 'text/plain');
    const { body, contentType } = await downloadContent(d.hs3, uri, false);
    expect(contentType?.split(';')[0]).toBe('text/plain');
    expect(body.toString()).toBe(file.toString());
  });

  it('Can download without a file name over federation', async () => {
    const { body, contentType } = await downloadContent(d.hs3, `mxc://${d.peer.name}/PlainTextFile`, false);
    expect(contentType?.split(';')[0]).toBe('text/plain');
    expect(body.toString()).toBe(remoteFile.toString());
  });
});

// matrix-org/complement tests/media_nofilename_test.go TestMediaWithoutFileNameCSMediaV1
describe('TestMediaWithoutFileNameCSMediaV1', () => {
  const file = Buffer.from('Hello World!');

  it('Can upload without a file name', async () => {
    expect(await uploadContent(d.hs1, file, '', 'text/plain')).toMatch(/^mxc:\/\//);
  });

  it('Can download without a file name locally', async () => {
    const uri = await uploadContent(d.hs1, file, '', 'text/plain');
    const { body, contentType } = await downloadContent(d.hs1, uri, true);
    expect(contentType?.split(';')[0]).toBe('text/plain');
    expect(body.toString()).toBe(file.toString());
  });

  it('Can download without a file name over federation', async () => {
    const uri = await uploadContent(d.hs1, file, '', 'text/plain');
    const { body, contentType } = await downloadContent(d.hs2, uri, true);
    expect(contentType?.split(';')[0]).toBe('text/plain');
    expect(body.toString()).toBe(file.toString());
  });
});

// matrix-org/complement tests/media_thumbnail_test.go TestLocalPngThumbnail ("sytest: POSTed media can be thumbnailed")
describe('TestLocalPngThumbnail', () => {
  it('test /_matrix/media/v3 endpoint', async () => {
    const uri = await uploadContent(d.hs3, fixtures.largePng, 'test.png', 'image/png');
    await fetchAndValidateThumbnail(d.hs3, uri, false);
  });

  it('test /_matrix/client/v1/media endpoint', async () => {
    const uri = await uploadContent(d.hs1, fixtures.largePng, 'test.png', 'image/png');
    await fetchAndValidateThumbnail(d.hs1, uri, true);
  });
});

// matrix-org/complement tests/media_thumbnail_test.go TestRemotePngThumbnail ("sytest: Remote media can be thumbnailed")
describe('TestRemotePngThumbnail', () => {
  it('test /_matrix/media/v3 endpoint', async () => {
    const uri = await uploadContent(d.hs4, fixtures.largePng, 'test.png', 'image/png');
    await fetchAndValidateThumbnail(d.hs3, uri, false);
  });

  it('test /_matrix/client/v1/media endpoint, then 401 without an access token', async () => {
    const uri = await uploadContent(d.hs1, fixtures.largePng, 'test.png', 'image/png');
    await fetchAndValidateThumbnail(d.hs2, uri, true);
    const [origin, mediaId] = splitMxc(uri);
    const anonymous = await get(d.hs1, `/_matrix/client/v1/media/thumbnail/${origin}/${mediaId}`, { token: null });
    expect(anonymous.status).toBe(401);
  });
});

// matrix-org/complement tests/media_thumbnail_test.go TestFederationThumbnail
describe('TestFederationThumbnail', () => {
  it('the federation thumbnail of a PNG is an image/png part with the client thumbnail\'s bytes', async () => {
    const uri = await uploadContent(d.hs1, fixtures.largePng, 'test.png', 'image/png');
    const [origin, mediaId] = splitMxc(uri);
    const client = await get(d.hs1, `/_matrix/client/v1/media/thumbnail/${origin}/${mediaId}?width=32&height=32&method=scale`);
    expect(client.status).toBe(200);
    const clientBytes = await bytesOf(client);

    // Signed by the scripted server: hs1 fetches its key from remote.test's key endpoint.
    const res = await federationGet(d.peer, d.hs1, `/_matrix/federation/v1/media/thumbnail/${mediaId}?method=scale&width=32&height=32`);
    expect(res.status).toBe(200);
    const decoded = await decodeMultipart(res.headers.get('content-type') ?? '', res.body!, { maxContentBytes: 1 << 20 });
    if (decoded.kind !== 'content') throw new Error('expected an inline part');
    // Exactly image/png: a PNG source gets a PNG thumbnail (Synapse's THUMBNAIL_SUPPORTED_MEDIA_FORMAT_MAP).
    expect(decoded.contentType).toBe('image/png');
    expect(Buffer.from(await new Response(decoded.stream).arrayBuffer()).equals(clientBytes)).toBe(true);
  });
});

// matrix-org/complement tests/csapi/url_preview_test.go TestUrlPreview ("sytest: Test URL preview")
describe('TestUrlPreview', () => {
  it('previews an OpenGraph page, its og:image stored as local media', async () => {
    const page = `<html prefix="og: http://ogp.me/ns#"><head><title>The Rock (1996)</title>
<meta property="og:title" content="The Rock" />
<meta property="og:type" content="video.movie" />
<meta property="og:url" content="http://www.imdb.com/title/tt0117500/" />
<meta property="og:image" content="test.png" />
</head><body></body></html>`;
    const web = createServer((req, res) => {
      if (req.url === '/test.png') {
        res.writeHead(200, { 'Content-Type': 'image/png' });
        res.end(fixtures.matrixPng);
      } else if (req.url === '/test.html') {
        res.writeHead(200, { 'Content-Type': 'text/html' });
        res.end(page);
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = web.address() as { port: number };
      const res = await get(d.hs1, `/_matrix/media/v3/preview_url?url=${encodeURIComponent(`http://127.0.0.1:${port}/test.html`)}`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).toMatchObject({
        'og:title': 'The Rock',
        'og:type': 'video.movie',
        'og:url': 'http://www.imdb.com/title/tt0117500/',
        'matrix:image:size': 2239,
        'og:image:height': 129,
        'og:image:width': 279,
      });
      expect(body['og:image']).toMatch(/^mxc:\/\//);
    } finally {
      web.closeAllConnections();
      await new Promise<void>((resolve) => web.close(() => resolve()));
    }
  });
});

// matrix-org/complement tests/unknown_endpoints_test.go TestUnknownEndpoints, subtest "Media endpoints"
describe('TestUnknownEndpoints', () => {
  it('Media endpoints', async () => {
    for (const path of ['/_matrix/media/unknown', '/_matrix/media/v3/unknown']) {
      const res = await get(d.hs1, path);
      expect(res.status).toBe(404);
      expect((await matrixError(res)).errcode).toBe('M_UNRECOGNIZED');
    }
    const patch = await get(d.hs1, '/_matrix/media/v3/upload', { method: 'PATCH' });
    expect(patch.status).toBe(405);
    expect((await matrixError(patch)).errcode).toBe('M_UNRECOGNIZED');
  });
});
