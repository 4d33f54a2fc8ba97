import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { abortSignalFor } from '@hsmedia/koa-matrix';
import Koa from 'koa';
import { describe, expect, it } from 'vitest';
import { lookupQuery } from './internal/query-params.js';
import { accessRequestOf, clientLookup, federationLookup, memberOf, requesterOf, type MediaStateContext } from './route-context.js';

/** A real Koa context over a real (unconnected) Node request and response. */
function contextWith(state: MediaStateContext['state']): MediaStateContext {
  const req = new IncomingMessage(new Socket());
  const ctx = new Koa().createContext(req, new ServerResponse(req));
  Object.assign(ctx.state, state);
  return ctx;
}

const ALICE = { userId: '@alice:media.test', isGuest: false };

describe('media lookups', () => {
  it('client lookups carry the requester and a signal function that survives spreading', () => {
    const ctx = contextWith({ requester: ALICE });
    const lookup = clientLookup(ctx, false, lookupQuery('timeout_ms=5', false));
    expect(lookup).toMatchObject({ legacy: false, allowRemote: true, timeoutMs: 5, requester: ALICE });
    const copy = { ...lookup, allowLive: false };
    expect(typeof copy.signal).toBe('function');
    // The function gives the request's own signal, made when first asked for.
    expect((copy.signal as () => AbortSignal)()).toBe(abortSignalFor(ctx));
  });

  it('legacy lookups have no requester; federation lookups carry the origin and ask for local media only', () => {
    expect(clientLookup(contextWith({}), true, lookupQuery('allow_remote=false', true))).toMatchObject({
      legacy: true,
      allowRemote: false,
      requester: undefined,
    });
    const federation = federationLookup(contextWith({ origin: 'other.example' }), undefined);
    expect(federation).toMatchObject({ localOnly: true, origin: 'other.example', timeoutMs: undefined });
    expect(typeof federation.signal).toBe('function');
  });

  it('refuses a missing requester (401) and guests where members only are allowed (403)', () => {
    expect(() => requesterOf(contextWith({}))).toThrow(expect.objectContaining({ errcode: 'M_MISSING_TOKEN' }));
    const guest = contextWith({ requester: { userId: '@g:media.test', isGuest: true } });
    expect(requesterOf(guest).isGuest).toBe(true);
    expect(() => memberOf(guest)).toThrow(expect.objectContaining({ errcode: 'M_GUEST_ACCESS_FORBIDDEN' }));
    expect(memberOf(contextWith({ requester: ALICE }))).toBe(ALICE);
  });
});

describe('who asks, for answers from memory (accessRequestOf)', () => {
  it('says what clientLookup says about the requester and the route, without an object in the common cases', () => {
    const client = contextWith({ requester: ALICE });
    const onClient = accessRequestOf(client, false);
    expect(onClient).toBe(client.state);
    expect([onClient.legacy === true, onClient.requester]).toEqual([clientLookup(client, false, lookupQuery('', false)).legacy, ALICE]);
    const anonymous = contextWith({});
    expect(accessRequestOf(anonymous, true)).toEqual({ legacy: true, requester: undefined });
    expect(accessRequestOf(anonymous, true)).toBe(accessRequestOf(contextWith({}), true));
    // A requester on a legacy route (set by an outer middleware) is passed on, as clientLookup does.
    expect(accessRequestOf(contextWith({ requester: ALICE }), true)).toEqual({ legacy: true, requester: ALICE });
    // Anything more on the client route's state than clientLookup would pass is left out.
    expect(accessRequestOf(contextWith({ requester: ALICE, origin: 'other.test' }), false)).toEqual({ legacy: false, requester: ALICE });
  });
});
