export { createHomeserver, DEMO_SESSIONS, type Homeserver, type HomeserverOptions } from './homeserver.js';
export { requireSession, type Session, type SessionTable } from './session-auth.js';
