/**
 * The homeserver-mode options of `auth:` (beside `homeserver_url`): admins from the homeserver, and
 * a signing key published some other way than by the homeserver.
 */
import { z } from 'zod';

/** `auth.homeserver_admins` and `auth.key_published_elsewhere`, spread into the `auth` schema. */
export const homeserverAuthOptions: {
  readonly homeserver_admins: z.ZodOptional<z.ZodBoolean>;
  readonly key_published_elsewhere: z.ZodOptional<z.ZodBoolean>;
} = {
  homeserver_admins: z.boolean().optional().meta({
    description:
      "Homeserver mode: the homeserver's server admins are admins here too (asked with the caller's token at GET /_synapse/admin/v2/users/{user_id}, cached briefly), besides the `admins` list. Default false.",
  }),
  key_published_elsewhere: z.boolean().optional().meta({
    description:
      "Homeserver mode: skip the start-up check that the homeserver publishes our signing key at /_matrix/key/v2/server (for a key published another way). Default false: a key the homeserver does not publish is refused.",
  }),
};

interface AuthSection {
  readonly homeserver_url?: string | undefined;
  readonly homeserver_admins?: boolean | undefined;
  readonly key_published_elsewhere?: boolean | undefined;
}

/** A `.refine` for `auth`: the homeserver-mode options need `homeserver_url`. */
export const onlyWithHomeserver: readonly [
  (value: AuthSection) => boolean,
  { readonly error: string; readonly when: (payload: { value: unknown }) => boolean },
] = [
  (value: AuthSection) =>
    value.homeserver_url !== undefined || (value.homeserver_admins === undefined && value.key_published_elsewhere === undefined),
  {
    error: '`homeserver_admins` and `key_published_elsewhere` apply only with `homeserver_url`',
    when: (payload: { value: unknown }) => typeof payload.value === 'object' && payload.value !== null,
  },
];

/** What homeserver mode adds to the resolved `auth`. */
export interface HomeserverAuthExtras {
  /** Ask the homeserver whether a caller is a server admin (`auth.homeserver_admins`). */
  readonly homeserverAdmins: boolean;
  /** Skip the published-key check at start (`auth.key_published_elsewhere`). */
  readonly keyPublishedElsewhere: boolean;
}

/** Resolves the options (defaults false). */
export function resolveHomeserverAuthExtras(section: AuthSection): HomeserverAuthExtras {
  return {
    homeserverAdmins: section.homeserver_admins === true,
    keyPublishedElsewhere: section.key_published_elsewhere === true,
  };
}
