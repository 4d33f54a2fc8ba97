import { initialMigration } from './0001_initial.js';
import { thumbnailsMigration } from './0002_thumbnails.js';
import { leasesMigration } from './0004_leases.js';
import { mediaAdminIndexesMigration } from './0005_media_admin_indexes.js';
import { mediaProtectionMigration } from './0006_media_protection.js';
import { blockedHashesMigration } from './0007_blocked_hashes.js';
import { adminAuditMigration } from './0008_admin_audit.js';
import { scanStateMigration } from './0009_scan_state.js';
import { profileMediaMigration } from './0010_profile_media.js';
import { clusterCoordinationMigration } from './0011_cluster_coordination.js';
import { importCursorsMigration } from './0014_import_cursors.js';
import { blobRefsMigration } from './0012_blob_refs.js';
import type { StoreMigration } from './types.js';

export type { StoreMigration } from './types.js';

/** Every migration, oldest first. Append only. */
export const migrations: readonly StoreMigration[] = Object.freeze([initialMigration, thumbnailsMigration, leasesMigration, mediaAdminIndexesMigration, mediaProtectionMigration, blockedHashesMigration, adminAuditMigration, scanStateMigration, profileMediaMigration, clusterCoordinationMigration, blobRefsMigration, importCursorsMigration]);

/** Names of {@link migrations}, in order: what a fully migrated schema has recorded. */
export const MIGRATION_NAMES: readonly string[] = Object.freeze(migrations.map((migration) => migration.name));
