import { describe, expect, it } from 'vitest';
import { ConnectionGenerations, isConnectionLost } from './connection-loss.js';

function withCode(code: string, message = 'x'): Error {
  return Object.assign(new Error(message), { code });
}

describe('isConnectionLost', () => {
  it('recognises terminated sessions and reset sockets', () => {
    expect(isConnectionLost(withCode('57P01', 'terminating connection due to administrator command'))).toBe(true);
    expect(isConnectionLost(withCode('57P02'))).toBe(true);
    expect(isConnectionLost(withCode('ECONNRESET'))).toBe(true);
    expect(isConnectionLost(withCode('EPIPE'))).toBe(true);
    expect(isConnectionLost(new Error('select "x" from "media" - Connection terminated unexpectedly'))).toBe(true);
    expect(isConnectionLost(new Error('Client has encountered a connection error and is not queryable'))).toBe(true);
  });

  it('leaves statement failures, refused connections and non-errors alone', () => {
    expect(isConnectionLost(withCode('57014', 'canceling statement due to statement timeout'))).toBe(false);
    expect(isConnectionLost(withCode('23505', 'duplicate key value violates unique constraint'))).toBe(false);
    expect(isConnectionLost(withCode('57P03', 'the database system is starting up'))).toBe(false);
    expect(isConnectionLost(withCode('ECONNREFUSED'))).toBe(false);
    expect(isConnectionLost(new Error('Knex: Timeout acquiring a connection. The pool is probably full.'))).toBe(false);
    expect(isConnectionLost(undefined)).toBe(false);
    expect(isConnectionLost('Connection terminated unexpectedly')).toBe(false);
    expect(isConnectionLost({ code: 57 })).toBe(false);
  });
});

describe('ConnectionGenerations', () => {
  it('retires every connection stamped before retireAll, not those stamped after', () => {
    const generations = new ConnectionGenerations();
    const old = {};
    const unknown = {};
    generations.stamp(old);
    expect(generations.isCurrent(old)).toBe(true);
    generations.retireAll();
    const fresh = {};
    generations.stamp(fresh);
    expect(generations.isCurrent(old)).toBe(false);
    expect(generations.isCurrent(fresh)).toBe(true);
    expect(generations.isCurrent(unknown)).toBe(false);
  });
});
