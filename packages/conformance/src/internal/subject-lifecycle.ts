import { afterEach, beforeEach, describe } from 'vitest';
import type { PortFactory, PortSubject } from '../port-subject.js';

/**
 * A `describe` block whose every test gets a fresh subject from `factory`
 * (cleaned up after it); `register` adds the cases, reading the current
 * store through the accessor it is given.
 */
export function describeWithSubject<S>(title: string, factory: PortFactory<S>, register: (store: () => S) => void): void {
  describe(title, () => {
    let subject: PortSubject<S> | undefined;
    const store = (): S => {
      if (!subject) throw new Error('conformance: the factory did not run');
      return subject.store;
    };

    beforeEach(async () => {
      subject = await factory();
    });
    afterEach(async () => {
      const current = subject;
      subject = undefined;
      await current?.cleanup();
    });

    register(store);
  });
}
