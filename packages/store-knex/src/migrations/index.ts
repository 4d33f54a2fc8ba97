import { initialMigration } from './0001_initial.js';
import type { StoreMigration } from './types.js';

export type { StoreMigration } from './types.js';

/** Every migration, oldest first. Append only. */
export const migrations: readonly StoreMigration[] = Object.freeze([initialMigration]);
