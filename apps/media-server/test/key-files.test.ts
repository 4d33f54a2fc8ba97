import { sign, verify } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadOrCreateAdminToken } from '../src/admin-token.js';
import { synapseSigningKeyCodec, loadOrCreateSigningKey, SigningKeyFileError } from '../src/signing-key-file.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hsmedia-keys-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('loadOrCreateSigningKey', () => {
  it('creates a Synapse-format key file (0600) in a new directory, then reads the same key back', async () => {
    const path = join(dir, 'nested', 'signing.key');
    const first = await loadOrCreateSigningKey(path);
    expect(first.created).toBe(true);
    const text = await readFile(path, 'utf8');
    expect(text).toMatch(/^ed25519 a_[A-Za-z0-9_]{4} [A-Za-z0-9+/]{43}\n$/);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const second = await loadOrCreateSigningKey(path);
    expect(second.created).toBe(false);
    expect(second.key.keyId).toBe(first.key.keyId);
    expect(second.key.publicKey).toBe(first.key.publicKey);
  });

  it('derives the same public key as libsodium from the seed, and signs verifiably', async () => {
    const seed = new Uint8Array(32).map((_, index) => index);
    const path = join(dir, 'signing.key');
    await writeFile(path, `ed25519 a_abcd ${Buffer.from(seed).toString('base64').replace(/=+$/, '')}\n`);
    const { key } = await loadOrCreateSigningKey(path);
    const expected = Buffer.from(nacl.sign.keyPair.fromSeed(seed).publicKey).toString('base64').replace(/=+$/, '');
    expect(key).toMatchObject({ keyId: 'ed25519:a_abcd', version: 'a_abcd', publicKey: expected });
    const message = Buffer.from('{"a":1}');
    const signature = sign(null, message, key.privateKey);
    expect(nacl.sign.detached.verify(message, signature, Buffer.from(expected, 'base64'))).toBe(true);
    expect(verify(null, message, key.privateKey, signature)).toBe(true);
    expect(synapseSigningKeyCodec.format(key)).toBe(await readFile(path, 'utf8'));
  });

  it('uses the first key of a file with several and skips blank lines', async () => {
    const a = synapseSigningKeyCodec.generate();
    const b = synapseSigningKeyCodec.generate();
    const path = join(dir, 'signing.key');
    await writeFile(path, `\n${synapseSigningKeyCodec.format(a)}\n${synapseSigningKeyCodec.format(b)}`);
    expect((await loadOrCreateSigningKey(path)).key.keyId).toBe(a.keyId);
  });

  it.each([
    ['', 'holds no key'],
    ['ed25519 a_x\n', 'line 1: expected'],
    ['rsa a_x AAAA\n', 'unsupported algorithm rsa'],
    ['ed25519 a-x AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n', 'Key version'],
    ['ed25519 a_x AAAA\n', '32 bytes'],
    ['ed25519 a_x !!!!\n', 'not valid base64'],
  ])('refuses an unusable file %j and leaves it alone', async (content, message) => {
    const path = join(dir, 'signing.key');
    await writeFile(path, content);
    const error = await loadOrCreateSigningKey(path).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SigningKeyFileError);
    expect((error as Error).message).toContain(path);
    expect((error as Error).message).toContain(message);
    expect(await readFile(path, 'utf8')).toBe(content);
  });

  it('two concurrent first starts end up with one key', async () => {
    const path = join(dir, 'signing.key');
    const [a, b] = await Promise.all([loadOrCreateSigningKey(path), loadOrCreateSigningKey(path)]);
    expect(a.key.publicKey).toBe(b.key.publicKey);
    expect([a.created, b.created].filter(Boolean)).toHaveLength(1);
  });
});

describe('loadOrCreateAdminToken', () => {
  it('creates a random token once (0600) and reuses it', async () => {
    const path = join(dir, 'data', 'admin-token');
    const first = await loadOrCreateAdminToken(path);
    expect(first.created).toBe(true);
    expect(first.token).toMatch(/^hsm_[A-Za-z0-9_-]{43}$/);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await loadOrCreateAdminToken(path)).toEqual({ token: first.token, created: false });
    expect((await loadOrCreateAdminToken(join(dir, 'other'))).token).not.toBe(first.token);
  });

  it('refuses a file that holds no usable token', async () => {
    const path = join(dir, 'admin-token');
    await writeFile(path, 'short\n');
    await expect(loadOrCreateAdminToken(path)).rejects.toThrow(/expected one token/);
  });
});
