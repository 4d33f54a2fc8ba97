import { createRequire } from 'node:module';
import fc from 'fast-check';
import nacl from 'tweetnacl';
import { canonicalValue } from '../test/arbitraries.js';
import { decodeBase64 } from './base64.js';
import { describe, expect, it } from 'vitest';
import { vectors } from '../test/vectors.js';
import { canonicalJsonBytes } from './canonical-json.js';
import { isSignatureError } from './errors.js';
import { signingKeyFromSeed, verifyBytes } from './signing-key.js';
import {
  formatXMatrixHeader,
  isXMatrixAuthorization,
  parseXMatrixHeader,
  requestSigningObject,
  signXMatrixRequest,
} from './x-matrix.js';

const key = signingKeyFromSeed(vectors.seed_b64, '1');
const anotherJson = createRequire(import.meta.url)('another-json') as { stringify(value: unknown): string };

// X-Matrix (https://spec.matrix.org/v1.12/server-server-api/#request-authentication) signed with
// the test key of https://spec.matrix.org/v1.12/appendices/#signing-key
describe('signXMatrixRequest: derived vectors', () => {
  it.each(vectors.derived_x_matrix.map((v) => [v.canonical, v] as const))('%s', (_name, v) => {
    const object = JSON.parse(v.canonical) as { method: string; uri: string; origin: string; destination: string; content?: unknown };
    const header = signXMatrixRequest(object, key);
    expect(header).toBe(
      `X-Matrix origin="${object.origin}",destination="${object.destination}",key="ed25519:1",sig="${v.sig}"`,
    );
    expect(Buffer.from(canonicalJsonBytes(requestSigningObject(object))).toString()).toBe(v.canonical);
  });

  it.each([
    [
      '/_matrix/federation/v1/media/download/ascERGshawAWawugaAcauga?timeout_ms=20000',
      'GET',
      undefined,
      'remote.example',
      'KYzmQx5OsgMpJ9oVZxLWrpyU9xSVXSK8HrrgXr/ZthTApAioowL79XUwroajS/zJnBzLALwBctYoMMo8SMu0Cg',
    ],
    [
      '/_matrix/federation/v1/media/thumbnail/ascERGshawAWawugaAcauga?width=64&height=64&method=crop&animated=true',
      'GET',
      undefined,
      'remote.example',
      'c8pOq9TrZtavIQXfeszCv084uiJXtwyxtiRcy+/HxmLjS+kBQBMcR1L7nyrHglsioYIaE6322jqsZNwYN5ffDg',
    ],
    [
      '/_matrix/key/v2/query',
      'post',
      { server_keys: { 'remote.example': {} } },
      'notary.example',
      'ZgkPIIxGqZp834VjRaXjQJsdCXzmyiGbQiKze81SPycY50dLvk3YjHTDtPxGp0J87QVNXSErjr9HKlNOuJRpAQ',
    ],
  ])('derived vector %s', (uri, method, content, destination, sig) => {
    const request = { method, uri, origin: 'domain', destination, ...(content === undefined ? {} : { content }) };
    expect(parseXMatrixHeader(signXMatrixRequest(request, key)).sig).toBe(sig);
  });

  it('signs the query in the order sent', () => {
    const a = signXMatrixRequest({ method: 'GET', uri: '/x?a=1&b=2', origin: 'o', destination: 'd' }, key);
    const b = signXMatrixRequest({ method: 'GET', uri: '/x?b=2&a=1', origin: 'o', destination: 'd' }, key);
    expect(parseXMatrixHeader(a).sig).not.toBe(parseXMatrixHeader(b).sig);
  });

  it('refuses a uri that is not a request target', () => {
    expect(() => signXMatrixRequest({ method: 'GET', uri: 'https://x/y', origin: 'o', destination: 'd' }, key)).toThrow(
      TypeError,
    );
  });
});

// The Authorization header grammar of https://spec.matrix.org/v1.12/server-server-api/#request-authentication
describe('parseXMatrixHeader: parser cases', () => {
  it.each([
    [
      'X-Matrix origin="domain",destination="remote.example",key="ed25519:1",sig="abc/def+g"',
      { origin: 'domain', destination: 'remote.example', key: 'ed25519:1', sig: 'abc/def+g' },
    ],
    [
      'X-Matrix origin="domain",key="ed25519:1",sig="abc",destination="remote.example"',
      { origin: 'domain', destination: 'remote.example', key: 'ed25519:1', sig: 'abc' },
    ],
    ['X-Matrix origin=domain,key=ed25519:1,sig=abc', { origin: 'domain', key: 'ed25519:1', sig: 'abc' }],
    ['X-Matrix   ORIGIN="domain" ,\tKey="ed25519:1" ,  SIG="abc"', { origin: 'domain', key: 'ed25519:1', sig: 'abc' }],
    ['X-Matrix origin="dom\\ain",key="ed25519:1",sig="abc"', { origin: 'domain', key: 'ed25519:1', sig: 'abc' }],
    ['X-Matrix origin="domain",key="ed25519:1",sig="abc",foo="bar"', { origin: 'domain', key: 'ed25519:1', sig: 'abc' }],
    [
      'X-Matrix origin="[1234:5678::abcd]:8448",destination="remote.example",key="ed25519:1",sig="abc"',
      { origin: '[1234:5678::abcd]:8448', destination: 'remote.example', key: 'ed25519:1', sig: 'abc' },
    ],
    // Beyond the table: long key IDs, the `signature` alias, BWS around "=", empty list elements,
    // a padded signature unquoted, a lower-case scheme.
    [
      `X-Matrix origin=domain,key="ed25519:${'a_'.repeat(100)}",sig=abc`,
      { origin: 'domain', key: `ed25519:${'a_'.repeat(100)}`, sig: 'abc' },
    ],
    ['X-Matrix origin = "domain" , key = "ed25519:1",signature="abc"', { origin: 'domain', key: 'ed25519:1', sig: 'abc' }],
    ['X-Matrix ,origin="domain",,key="ed25519:1",sig="ab==",', { origin: 'domain', key: 'ed25519:1', sig: 'ab==' }],
    ['x-matrix origin=domain,key=ed25519:1,sig=ab==', { origin: 'domain', key: 'ed25519:1', sig: 'ab==' }],
  ])('%s', (header, expected) => {
    expect(parseXMatrixHeader(header)).toEqual(expected);
  });

  it('does not treat Bearer as X-Matrix (case 9)', () => {
    expect(isXMatrixAuthorization('Bearer xyz')).toBe(false);
    expect(isXMatrixAuthorization('X-Matrixorigin=a')).toBe(false);
    expect(isXMatrixAuthorization('X-Matrix origin=a')).toBe(true);
  });

  it.each([
    ['Bearer xyz', 'MALFORMED_HEADER'],
    ['X-Matrix', 'MALFORMED_HEADER'],
    ['X-Matrix key="ed25519:1",sig="abc"', 'MALFORMED_HEADER'],
    ['X-Matrix origin="domain",sig="abc"', 'MALFORMED_HEADER'],
    ['X-Matrix origin="domain",key="ed25519:1"', 'MALFORMED_HEADER'],
    ['X-Matrix origin="domain,key="ed25519:1",sig="abc"', 'MALFORMED_HEADER'],
    ['X-Matrix origin="domain",key="ed25519:1",sig="abc', 'MALFORMED_HEADER'],
    ['X-Matrix origin="domain" key="ed25519:1",sig="abc"', 'MALFORMED_HEADER'],
    ['X-Matrix origin,key="ed25519:1",sig="abc"', 'MALFORMED_HEADER'],
    ['X-Matrix origin=,key="ed25519:1",sig="abc"', 'MALFORMED_HEADER'],
    ['X-Matrix origin="a",origin="b",key="ed25519:1",sig="abc"', 'MALFORMED_HEADER'],
    ['X-Matrix origin="domain",key="nocolon",sig="abc"', 'MALFORMED_HEADER'],
    ['X-Matrix origin="domain",key="ed25519:1",sig="a",signature="b"', 'MALFORMED_HEADER'],
    ['X-Matrix origin="bad_name!",key="ed25519:1",sig="abc"', 'INVALID_SERVER_NAME'],
    ['X-Matrix origin="",key="ed25519:1",sig="abc"', 'INVALID_SERVER_NAME'],
  ])('rejects %j', (header, code) => {
    let caught: unknown;
    try {
      parseXMatrixHeader(header);
    } catch (error) {
      caught = error;
    }
    expect(isSignatureError(caught) && caught.code).toBe(code);
  });
});

describe('formatXMatrixHeader', () => {
  it('round-trips through the parser, escaping where needed', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('domain', 'a.example:8448', '[::1]:80', '1.2.3.4'),
        fc.option(fc.string({ minLength: 1, maxLength: 20 }), { nil: undefined }),
        fc.string({ minLength: 1, maxLength: 20 }).map((s) => `ed25519:${s}`),
        fc.string({ minLength: 1, maxLength: 90 }),
        (origin, destination, keyId, sig) => {
          const auth = destination === undefined ? { origin, key: keyId, sig } : { origin, destination, key: keyId, sig };
          expect(parseXMatrixHeader(formatXMatrixHeader(auth))).toEqual(auth);
        },
      ),
    );
  });

  it('verifies what it signs', () => {
    const request = { method: 'GET', uri: '/_matrix/federation/v1/media/download/abc', origin: 'domain', destination: 'r.example' };
    const parsed = parseXMatrixHeader(signXMatrixRequest(request, key));
    expect(verifyBytes(key.publicKey, canonicalJsonBytes(requestSigningObject(request)), parsed.sig)).toBe(true);
  });
});

describe('signXMatrixRequest cross-checked with tweetnacl + another-json', () => {
  it('produces signatures the independent implementation verifies, on random requests', () => {
    const publicKey = decodeBase64(key.publicKey);
    fc.assert(
      fc.property(
        fc.constantFrom('GET', 'PUT', 'POST', 'DELETE'),
        fc.webPath(),
        fc.option(fc.webQueryParameters(), { nil: undefined }),
        fc.constantFrom('a.example', 'b.example:8448', '[::1]:1'),
        fc.option(canonicalValue, { nil: undefined }),
        (method, path, query, destination, content) => {
          const uri = `/${path.replace(/^\/+/, '')}${query === undefined ? '' : `?${query}`}`;
          const request = { method, uri, origin: 'domain', destination, ...(content === undefined ? {} : { content }) };
          const { sig } = parseXMatrixHeader(signXMatrixRequest(request, key));
          const bytes = new TextEncoder().encode(String(anotherJson.stringify(requestSigningObject(request))));
          expect(nacl.sign.detached.verify(bytes, decodeBase64(sig), publicKey)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});
