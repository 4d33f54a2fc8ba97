/**
 * The `url_preview` config section: defaults, resolution and every check of
 * an enabled section, with `@hsmedia/url-preview/config` (the previewer's
 * option checks without the previewer). The config loader imports this
 * module; the previewer itself is composed in `url-preview.ts` when the
 * server starts.
 */
import type { UrlDenyRule } from '@hsmedia/url-preview';
import { urlPreviewerOptionProblems, type UrlPreviewerSettingsOptions } from '@hsmedia/url-preview/config';
import { parseByteSize } from './byte-size.js';

/**
 * The default `url_preview.ip_range_denylist`: every non-public range that
 * `@hsmedia/net-guard` refuses by itself (IANA special-purpose registries).
 * IPv4-mapped, NAT64 and 6to4 ranges are not listed: they are judged by the
 * IPv4 address they carry, so `::ffff:127.0.0.1` is refused as loopback while
 * `::ffff:<public IPv4>` is not.
 */
export const DEFAULT_URL_PREVIEW_IP_RANGE_DENYLIST: readonly string[] = Object.freeze([
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.88.99.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '240.0.0.0/4',
  '255.255.255.255/32',
  '::/128',
  '::1/128',
  '::/96',
  '64:ff9b:1::/48',
  '100::/64',
  '2001::/23',
  '2001:db8::/32',
  'fc00::/7',
  'fe80::/10',
  'fec0::/10',
  'ff00::/8',
]);

/** Defaults of the `url_preview` section (as written in `config.sample.yaml`). */
export const URL_PREVIEW_DEFAULTS: {
  readonly max_page_size: '10M';
  readonly max_image_size: '10M';
  readonly timeout_ms: 10_000;
  readonly cache_ttl_ms: 3_600_000;
} = {
  max_page_size: '10M',
  max_image_size: '10M',
  timeout_ms: 10_000,
  cache_ttl_ms: 3_600_000, // 1 h, like Synapse's in-memory preview cache
} as const;

/** The `url_preview` section as the config schema gives it (snake_case, sizes unparsed). */
export interface UrlPreviewFileSection {
  readonly enabled: boolean;
  readonly ip_range_denylist: readonly string[];
  readonly ip_range_allowlist: readonly string[];
  readonly url_denylist: readonly { readonly scheme?: string | undefined; readonly host?: string | undefined; readonly port?: string | number | undefined; readonly path?: string | undefined; readonly url?: string | undefined }[];
  readonly max_page_size: number | string;
  readonly max_image_size: number | string;
  readonly user_agent?: string | undefined;
  readonly accept_language?: string | undefined;
  readonly timeout_ms: number;
  readonly cache_ttl_ms: number;
  readonly oembed: { readonly providers_file?: string | undefined; readonly discovery: boolean };
}

/** The resolved `url_preview` settings. */
export interface UrlPreviewConfig {
  readonly enabled: boolean;
  readonly ipRangeDenylist: readonly string[];
  readonly ipRangeAllowlist: readonly string[];
  readonly urlDenylist: readonly UrlDenyRule[];
  readonly maxPageBytes: number;
  readonly maxImageBytes: number;
  /** Undefined: the package's default (`hsmedia-url-preview/0.1 (bot; Matrix URL preview)`). */
  readonly userAgent: string | undefined;
  /** Undefined: the package's default (`en`). */
  readonly acceptLanguage: string | undefined;
  readonly timeoutMs: number;
  readonly cacheTtlMs: number;
  readonly oEmbed: {
    /** Absolute path of an oembed.com `providers.json`; undefined: the bundled list. */
    readonly providersFile: string | undefined;
    readonly discovery: boolean;
  };
}

/** A problem of the `url_preview` section: `path` below `url_preview`, and what is wrong. */
export interface UrlPreviewConfigProblem {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/** Resolves the file section: sizes in bytes, the providers file against `resolvePath`. */
export function resolveUrlPreviewConfig(file: UrlPreviewFileSection, resolvePath: (path: string) => string): UrlPreviewConfig {
  return {
    enabled: file.enabled,
    ipRangeDenylist: [...file.ip_range_denylist],
    ipRangeAllowlist: [...file.ip_range_allowlist],
    urlDenylist: file.url_denylist.map((rule) => {
      const copy: Record<string, string> = {};
      for (const [key, value] of Object.entries(rule)) if (value !== undefined) copy[key] = String(value);
      return copy as UrlDenyRule;
    }),
    maxPageBytes: parseByteSize(file.max_page_size) ?? 0,
    maxImageBytes: parseByteSize(file.max_image_size) ?? 0,
    userAgent: file.user_agent,
    acceptLanguage: file.accept_language,
    timeoutMs: file.timeout_ms,
    cacheTtlMs: file.cache_ttl_ms,
    oEmbed: {
      providersFile: file.oembed.providers_file === undefined ? undefined : resolvePath(file.oembed.providers_file),
      discovery: file.oembed.discovery,
    },
  };
}

/**
 * The previewer's problem prefixes (option names) → the config keys an
 * operator wrote. `strip`: the prefix only names the option, so it is left
 * out of the message.
 */
const OPTION_KEYS: readonly { pattern: RegExp; strip: boolean; key: (match: RegExpExecArray) => (string | number)[] }[] = [
  { pattern: /^urlDenyList\[(\d+)\](?:\.(\w+))?:? ?/, strip: true, key: (m) => ['url_denylist', Number(m[1]), ...(m[2] === undefined ? [] : [m[2]])] },
  { pattern: /^createAddressPolicy: allow /, strip: true, key: () => ['ip_range_allowlist'] },
  { pattern: /^createAddressPolicy: deny /, strip: true, key: () => ['ip_range_denylist'] },
  { pattern: /^no IP range deny list/, strip: false, key: () => ['ip_range_allowlist'] },
  { pattern: /^maxPageBytes /, strip: true, key: () => ['max_page_size'] },
  { pattern: /^maxImageBytes /, strip: true, key: () => ['max_image_size'] },
  { pattern: /^timeoutMs /, strip: true, key: () => ['timeout_ms'] },
  { pattern: /^cacheTtlMs /, strip: true, key: () => ['cache_ttl_ms'] },
  { pattern: /^userAgent /, strip: true, key: () => ['user_agent'] },
  { pattern: /^acceptLanguage /, strip: true, key: () => ['accept_language'] },
  { pattern: /^oEmbed provider /, strip: false, key: () => ['oembed', 'providers_file'] },
];

/** A `PreviewConfigError` problem, keyed by the config key it comes from. */
export function keyedProblem(problem: string): UrlPreviewConfigProblem {
  const renamed = (text: string): string =>
    text.replaceAll('ipRangeAllowList', 'ip_range_allowlist').replaceAll('ipRangeDenyList', 'ip_range_denylist');
  for (const { pattern, strip, key } of OPTION_KEYS) {
    const match = pattern.exec(problem);
    if (match === null) continue;
    const rest = strip ? problem.slice(match[0].length) : problem;
    return { path: key(match), message: renamed(rest === '' ? problem : rest.charAt(0).toUpperCase() + rest.slice(1)) };
  }
  return { path: [], message: renamed(problem) };
}

/**
 * The deny list handed to the previewer: the configured entries that are not
 * default entries. Every default entry is refused by net-guard's built-in
 * classification anyway; leaving them out lets an allow list entry open a
 * default range of the same size (`ip_range_allowlist: ['10.0.0.0/8']`), as
 * Synapse's whitelist does, instead of tying with it (a tie refuses).
 */
function effectiveDenyList(config: UrlPreviewConfig): string[] {
  const defaults = new Set(DEFAULT_URL_PREVIEW_IP_RANGE_DENYLIST);
  return config.ipRangeDenylist.filter((entry) => !defaults.has(entry.trim().toLowerCase()));
}

/**
 * The previewer options this section decides: all but the image store and
 * what the running server adds (oEmbed providers, logger, shared cache).
 * `maxUploadBytes`: the image becomes an upload, so it can never be larger
 * than an upload may be.
 */
export function previewerSettingsOf(config: UrlPreviewConfig, maxUploadBytes?: number): UrlPreviewerSettingsOptions {
  return {
    ipRangeDenyList: effectiveDenyList(config),
    ipRangeAllowList: [...config.ipRangeAllowlist],
    urlDenyList: config.urlDenylist,
    maxPageBytes: config.maxPageBytes,
    maxImageBytes: maxUploadBytes === undefined ? config.maxImageBytes : Math.min(config.maxImageBytes, maxUploadBytes),
    timeoutMs: config.timeoutMs,
    cacheTtlMs: config.cacheTtlMs,
    ...(config.userAgent === undefined ? {} : { userAgent: config.userAgent }),
    ...(config.acceptLanguage === undefined ? {} : { acceptLanguage: config.acceptLanguage }),
    oEmbed: { discovery: config.oEmbed.discovery },
  };
}

/**
 * Every problem of an enabled `url_preview` section, keyed below
 * `url_preview` (nothing is checked while previews are off):
 * an empty `ip_range_denylist` (Synapse likewise refuses to start with
 * previews and no `url_preview_ip_range_blacklist`), and
 * whatever `createUrlPreviewer` refuses (an allow list that opens a whole
 * address family, bad CIDRs, bad URL deny rules, bad limits), checked
 * without building a previewer. The oEmbed providers file is read and
 * checked when the server starts.
 */
export function urlPreviewConfigProblems(config: UrlPreviewConfig): UrlPreviewConfigProblem[] {
  if (!config.enabled) return [];
  const problems: UrlPreviewConfigProblem[] = [];
  if (config.ipRangeDenylist.length === 0) {
    problems.push({
      path: ['ip_range_denylist'],
      message:
        'Must not be empty while URL previews are enabled: previews would be a proxy into the internal network. ' +
        'Leave the key out for the default list of non-public ranges',
    });
  }
  // A rule naming no component is refused by the schema already; here it only echoes a bad component.
  const previewerProblems = urlPreviewerOptionProblems(previewerSettingsOf(config));
  problems.push(...previewerProblems.filter((problem) => !/ names no URL component$/.test(problem)).map(keyedProblem));
  return problems;
}
