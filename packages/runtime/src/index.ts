/**
 * The small contracts every `@hsmedia/*` package shares, at the bottom of
 * the package graph so that a package can take them without the media
 * domain (`@hsmedia/client-auth` needs `Requester`, `@hsmedia/federation-client`
 * needs `Logger` and `Clock`).
 */
export { type Logger, noopLogger } from './logger.js';
export { type Clock, systemClock } from './clock.js';
export { type Requester } from './requester.js';
export { type SignalSource, signalOf, raceAbort } from './abort.js';
