/**
 * `synapse.config_path`: start from Synapse's own `homeserver.yaml`. The settings hsmedia shares
 * with the homeserver (server name, signing key, upload size, URL previews, media directory) are
 * read from it and fill whatever the hsmedia file leaves out; explicit hsmedia settings win. A
 * problem names the Synapse key at fault and the file.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseByteSize } from './byte-size.js';

/** The `synapse:` section. */
export const synapseSectionSchema: z.ZodOptional<z.ZodObject<{ config_path: z.ZodString }, z.core.$strict>> = z
  .strictObject({
    config_path: z.string().min(1).meta({
      description:
        "Synapse's homeserver.yaml: server_name, signing_key_path, max_upload_size, the url_preview_* settings and media_store_path are read from it when this file does not set them.",
    }),
  })
  .optional()
  .meta({ description: 'Run beside Synapse with its settings (see docs/deploy/synapse.md).' });

/** The merged document, or the problems found reading Synapse's file. */
export type SynapseMerge =
  | {
      readonly ok: true;
      readonly document: unknown;
      /** Adds the Synapse key a validation error came from, when it did. */
      readonly annotate: (errors: readonly string[]) => string[];
    }
  | { readonly ok: false; readonly errors: readonly string[] };

type Mapping = Record<string, unknown>;

function isMapping(value: unknown): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Synapse's names (old and new spellings) → our `url_preview` keys. */
const URL_PREVIEW_LISTS: readonly (readonly [string, string])[] = [
  ['url_preview_ip_range_blocklist', 'ip_range_denylist'],
  ['url_preview_ip_range_blacklist', 'ip_range_denylist'],
  ['url_preview_ip_range_allowlist', 'ip_range_allowlist'],
  ['url_preview_ip_range_whitelist', 'ip_range_allowlist'],
];

/** Components of a Synapse `url_preview_url_blacklist` entry we can express, and their names here. */
const URL_RULE_KEYS: Readonly<Record<string, string>> = { scheme: 'scheme', netloc: 'host', hostname: 'host', port: 'port', path: 'path' };

/** Reads the Synapse settings into a partial hsmedia document and where each part came from. */
function fromSynapse(synapse: Mapping, file: string): { document: Mapping; origins: Map<string, string>; errors: string[] } {
  const document: Mapping = {};
  const origins = new Map<string, string>();
  const errors: string[] = [];
  const dir = dirname(file);
  const problem = (key: string, message: string): void => void errors.push(`synapse.config_path: ${file}: ${key}: ${message}`);
  const set = (path: string, value: unknown, synapseKey: string): void => {
    const parts = path.split('.');
    let node = document;
    for (const part of parts.slice(0, -1)) node = (node[part] ??= {}) as Mapping;
    node[parts.at(-1)!] = value;
    origins.set(path, synapseKey);
  };
  const text = (key: string): string | undefined => {
    const value = synapse[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value === 'string' && value !== '') return value;
    problem(key, 'Expected a non-empty string');
    return undefined;
  };

  const serverName = text('server_name');
  if (serverName !== undefined) set('server_name', serverName, 'server_name');
  // Synapse resolves relative paths against its working directory; we take the file's directory.
  const keyPath = text('signing_key_path');
  if (keyPath !== undefined) set('signing_key_path', resolve(dir, keyPath), 'signing_key_path');
  const mediaStore = text('media_store_path');
  if (mediaStore !== undefined) set('media_store.filesystem.path', resolve(dir, mediaStore), 'media_store_path');

  const maxUpload = synapse['max_upload_size'];
  if (maxUpload !== undefined && maxUpload !== null) {
    if ((typeof maxUpload === 'string' || typeof maxUpload === 'number') && parseByteSize(maxUpload) !== undefined) {
      set('max_upload_size', maxUpload, 'max_upload_size');
    } else problem('max_upload_size', 'Expected a size such as "50M"');
  }

  const previews = synapse['url_preview_enabled'];
  if (previews !== undefined && previews !== null) {
    if (typeof previews === 'boolean') set('url_preview.enabled', previews, 'url_preview_enabled');
    else problem('url_preview_enabled', 'Expected true or false');
  }
  for (const [synapseKey, ours] of URL_PREVIEW_LISTS) {
    const list = synapse[synapseKey];
    if (list === undefined || list === null) continue;
    if (Array.isArray(list) && list.every((item) => typeof item === 'string')) set(`url_preview.${ours}`, list, synapseKey);
    else problem(synapseKey, 'Expected a list of addresses or CIDRs');
  }
  for (const synapseKey of ['url_preview_url_blocklist', 'url_preview_url_blacklist']) {
    const list = synapse[synapseKey];
    if (list === undefined || list === null) continue;
    const rules = Array.isArray(list) ? list.map((entry, index) => urlRule(entry, `${synapseKey}.${index}`, problem)) : null;
    if (rules === null) problem(synapseKey, 'Expected a list of mappings');
    else if (rules.every((rule) => rule !== null)) set('url_preview.url_denylist', rules, synapseKey);
  }
  const spiderSize = synapse['max_spider_size'];
  if (spiderSize !== undefined && spiderSize !== null) {
    if ((typeof spiderSize === 'string' || typeof spiderSize === 'number') && parseByteSize(spiderSize) !== undefined) {
      set('url_preview.max_page_size', spiderSize, 'max_spider_size');
    } else problem('max_spider_size', 'Expected a size such as "10M"');
  }
  const languages = synapse['url_preview_accept_language'];
  if (languages !== undefined && languages !== null) {
    if (Array.isArray(languages) && languages.length > 0 && languages.every((item) => typeof item === 'string')) {
      set('url_preview.accept_language', languages.join(', '), 'url_preview_accept_language');
    } else problem('url_preview_accept_language', 'Expected a list of language tags');
  }
  return { document, origins, errors };
}

function urlRule(entry: unknown, key: string, problem: (key: string, message: string) => void): Mapping | null {
  if (!isMapping(entry)) {
    problem(key, 'Expected a mapping of URL components');
    return null;
  }
  const rule: Mapping = {};
  for (const [component, value] of Object.entries(entry)) {
    const ours = URL_RULE_KEYS[component];
    if (ours === undefined) {
      problem(`${key}.${component}`, `Not supported here (use one of ${Object.keys(URL_RULE_KEYS).join(', ')}, or url_preview.url_denylist)`);
      return null;
    }
    rule[ours] = typeof value === 'number' ? value : String(value);
  }
  return rule;
}

/** `base` overlaid with `over`: mappings merge key by key, anything else in `over` replaces. */
function overlay(base: unknown, over: unknown): unknown {
  if (!isMapping(base) || !isMapping(over)) return over === undefined ? base : over;
  const merged: Mapping = { ...base };
  for (const [key, value] of Object.entries(over)) merged[key] = overlay(base[key], value);
  return merged;
}

function isSetIn(document: unknown, path: string): boolean {
  let node = document;
  for (const part of path.split('.')) {
    if (!isMapping(node) || node[part] === undefined) return false;
    node = node[part];
  }
  return true;
}

/**
 * Merges the settings of the Synapse config named by `synapse.config_path` (or by
 * `overridePath`, the CLI's `--synapse-config`, already absolute) under `document`.
 * Without either, the document passes through unchanged.
 */
export function withSynapseSettings(document: unknown, baseDir: string, overridePath?: string): SynapseMerge {
  const section = isMapping(document) ? document['synapse'] : undefined;
  const configured = isMapping(section) && typeof section['config_path'] === 'string' ? section['config_path'] : undefined;
  const path = overridePath ?? configured;
  if (path === undefined || path === '') return { ok: true, document, annotate: (errors) => [...errors] };
  const file = resolve(baseDir, path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { ok: false, errors: [`synapse.config_path: ${file}: ${code === 'ENOENT' ? 'file not found' : (error as Error).message}`] };
  }
  let synapse: unknown;
  try {
    synapse = parseYaml(text);
  } catch (error) {
    return { ok: false, errors: [`synapse.config_path: ${file}: invalid YAML: ${(error as Error).message.split('\n')[0]}`] };
  }
  if (!isMapping(synapse)) return { ok: false, errors: [`synapse.config_path: ${file}: expected a mapping of keys at the top level`] };
  const derived = fromSynapse(synapse, file);
  if (derived.errors.length > 0) return { ok: false, errors: derived.errors };
  const own = isMapping(document) ? document : {};
  const withPath = overridePath === undefined ? own : overlay(own, { synapse: { config_path: file } });
  // Only what the hsmedia file leaves out is Synapse's; error messages say so.
  const origins = [...derived.origins].filter(([ours]) => !isSetIn(own, ours));
  return {
    ok: true,
    document: overlay(derived.document, withPath),
    annotate: (errors) =>
      errors.map((error) => {
        const origin = origins.find(([ours]) => error === ours || error.startsWith(`${ours}:`) || error.startsWith(`${ours}.`));
        return origin === undefined ? error : `${error} (from ${origin[1]} in ${file})`;
      }),
  };
}
