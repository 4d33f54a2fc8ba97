/**
 * The `synapse_read_through:` config section: switching from Synapse's media
 * repository with no downtime (docs/migrate-from-synapse.md, "Switching
 * without downtime"). Synapse's database (read-only) and `media_store` are
 * named here; a local media ID hsmedia does not know is imported from them on
 * first access, and a background job moves the rest in at a set rate.
 */
import { resolve } from 'node:path';
import { z } from 'zod';

/** Defaults of `synapse_read_through:`; `config.sample.yaml` documents the same. */
export const SYNAPSE_READ_THROUGH_DEFAULTS = {
  files_per_second: 20,
} as const;

/** `synapse_read_through:` as written in the file, after validation and defaults. */
export interface SynapseReadThroughFile {
  readonly database: { readonly sqlite: string } | { readonly postgres: string };
  readonly media_store_path: string;
  readonly backfill: { readonly enabled: boolean; readonly files_per_second: number };
}

/** `synapse_read_through:` in the config file. */
export const synapseReadThroughSchema: z.ZodType<SynapseReadThroughFile, unknown> = z
  .strictObject({
    database: z
      .union([
        z.strictObject({ sqlite: z.string().min(1).meta({ description: "Path of Synapse's SQLite database (homeserver.db), opened read-only." }) }),
        z.strictObject({
          postgres: z
            .string()
            .regex(/^postgres(ql)?:\/\//, { error: 'Expected a postgres:// connection string' })
            .meta({ description: "Connection string of Synapse's PostgreSQL database; every session is read-only." }),
        }),
      ])
      .meta({ description: "Synapse's database: {sqlite: path} or {postgres: connection string}. Only read." }),
    media_store_path: z.string().min(1).meta({ description: "Synapse's media_store_path (local_content/, remote_content/, thumbnails). Only read." }),
    backfill: z
      .strictObject({
        enabled: z.boolean().default(true).meta({ description: 'Import everything not yet asked for in the background (one process of a deployment at a time).' }),
        files_per_second: z
          .number()
          .positive()
          .max(10_000)
          .default(SYNAPSE_READ_THROUGH_DEFAULTS.files_per_second)
          .meta({ description: 'Media items (each with its thumbnails) imported per second by the background job.' }),
      })
      .default({ enabled: true, files_per_second: SYNAPSE_READ_THROUGH_DEFAULTS.files_per_second }),
  })
  .meta({
    description:
      "Read-through from Synapse's media repository: local media hsmedia does not know is looked up in Synapse's database and media_store, served and imported on first access; a background job imports the rest. Absent: off.",
  });

/** The resolved `synapse_read_through:` section. */
export interface SynapseReadThroughConfig {
  /** Secret when the connection string carries a password: never log it. */
  readonly database: { readonly sqlite: string } | { readonly postgres: string };
  readonly mediaStorePath: string;
  readonly backfill: { readonly enabled: boolean; readonly filesPerSecond: number };
}

/** Resolves paths against the config file's directory. */
export function resolveSynapseReadThroughConfig(file: SynapseReadThroughFile | undefined, baseDir: string): SynapseReadThroughConfig | undefined {
  if (file === undefined) return undefined;
  return {
    database: 'sqlite' in file.database ? { sqlite: resolve(baseDir, file.database.sqlite) } : { postgres: file.database.postgres },
    mediaStorePath: resolve(baseDir, file.media_store_path),
    backfill: { enabled: file.backfill.enabled, filesPerSecond: file.backfill.files_per_second },
  };
}
