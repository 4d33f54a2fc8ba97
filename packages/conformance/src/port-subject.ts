/** What a {@link PortFactory} hands to each test: a fresh, empty store and how to dispose of it. */
export interface PortSubject<S> {
  /** The store under test, implementing the port the suite checks (and possibly more). */
  readonly store: S;
  /** Closes the store and removes what the factory created (files, schemas, databases). */
  cleanup(): Promise<void>;
}

/** Creates a fresh, empty store (schema in place); called once per test. */
export type PortFactory<S> = () => Promise<PortSubject<S>>;
