import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHomeserver, type Homeserver } from '../src/homeserver.js';
import type { Session } from '../src/session-auth.js';

const SERVER_NAME = 'hs.example.localhost';
const SESSIONS = new Map<string, Session>([
  ['alice-token', { userId: '@alice:hs.example.localhost', deviceId: 'PHONE' }],
  ['bob-token', { userId: '@bob:hs.example.localhost', deviceId: 'LAPTOP' }],
]);
const bearer = (token: string): Record<string, string> => ({ Authorization: `Bearer ${token}` });

let mediaDir: string;
let homeserver: Homeserver;
let url: string;

beforeEach(async () => {
  mediaDir = await mkdtemp(path.join(tmpdir(), 'example-homeserver-'));
  homeserver = createHomeserver({ serverName: SERVER_NAME, mediaDir, sessions: SESSIONS, maxUploadBytes: 1024 * 1024 });
  url = await homeserver.listen();
});

afterEach(async () => {
  await homeserver.close();
  await rm(mediaDir, { recursive: true, force: true });
});

async function upload(body: Uint8Array | string, token = 'alice-token'): Promise<string> {
  const response = await fetch(`${url}/_matrix/media/v3/upload?filename=notes.txt`, {
    method: 'POST',
    headers: { ...bearer(token), 'Content-Type': 'text/plain' },
    body,
  });
  expect(response.status).toBe(200);
  const { content_uri: contentUri } = (await response.json()) as { content_uri: string };
  expect(contentUri).toMatch(new RegExp(`^mxc://${SERVER_NAME.replaceAll('.', '\\.')}/[A-Za-z0-9_-]+$`));
  return contentUri.slice('mxc://'.length);
}

describe('example homeserver', () => {
  it('uploads with one session and downloads the same bytes with another, through its own auth', async () => {
    const bytes = new TextEncoder().encode('hello from the example homeserver\n'.repeat(100));
    const serverAndId = await upload(bytes);

    const response = await fetch(`${url}/_matrix/client/v1/media/download/${serverAndId}`, { headers: bearer('bob-token') });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(bytes);
  });

  it('answers its own 401 M_UNKNOWN_TOKEN for a session it does not know, on upload and download', async () => {
    const serverAndId = await upload('secret');
    const download = await fetch(`${url}/_matrix/client/v1/media/download/${serverAndId}`, { headers: bearer('stolen') });
    expect(download.status).toBe(401);
    expect(await download.json()).toEqual({ errcode: 'M_UNKNOWN_TOKEN', error: 'No such session on this homeserver' });

    const rejectedUpload = await fetch(`${url}/_matrix/media/v3/upload`, { method: 'POST', headers: bearer('stolen'), body: 'x' });
    expect(rejectedUpload.status).toBe(401);
    expect(((await rejectedUpload.json()) as { errcode: string }).errcode).toBe('M_UNKNOWN_TOKEN');
  });

  it('answers 401 M_MISSING_TOKEN without a bearer token, before looking at the media ID', async () => {
    const response = await fetch(`${url}/_matrix/client/v1/media/download/${SERVER_NAME}/not-a-valid-id!`, {
      headers: { Authorization: 'Basic YWxpY2U6cGFzc3dvcmQ=' },
    });
    expect(response.status).toBe(401);
    expect(((await response.json()) as { errcode: string }).errcode).toBe('M_MISSING_TOKEN');
  });

  it('serves its own routes beside the media ones, and M_UNRECOGNIZED for the rest', async () => {
    const whoami = await fetch(`${url}/_matrix/client/v3/account/whoami`, { headers: bearer('alice-token') });
    expect(await whoami.json()).toEqual({ user_id: '@alice:hs.example.localhost', device_id: 'PHONE' });

    const unknown = await fetch(`${url}/_matrix/client/v3/nothing-here`, { headers: bearer('alice-token') });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { errcode: string }).errcode).toBe('M_UNRECOGNIZED');
  });

  it('refuses an upload above its limit with 413 M_TOO_LARGE and stores nothing', async () => {
    const response = await fetch(`${url}/_matrix/media/v3/upload`, {
      method: 'POST',
      headers: bearer('alice-token'),
      body: new Uint8Array(1024 * 1024 + 1),
    });
    expect(response.status).toBe(413);
    expect(((await response.json()) as { errcode: string }).errcode).toBe('M_TOO_LARGE');
  });

  it('answers 404 M_NOT_FOUND for media it never stored', async () => {
    const response = await fetch(`${url}/_matrix/client/v1/media/download/${SERVER_NAME}/NeverUploaded0001`, {
      headers: bearer('alice-token'),
    });
    expect(response.status).toBe(404);
    expect(((await response.json()) as { errcode: string }).errcode).toBe('M_NOT_FOUND');
  });
});
