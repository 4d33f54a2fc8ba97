/**
 * The checks of the previewer's options but `storeImage`, shared by
 * `createUrlPreviewer` (before it builds anything) and by
 * `@hsmedia/url-preview/config` (without building anything). Loads no
 * fetcher, HTML parser or cache.
 */
import { createAddressPolicy, type AddressPolicy } from '@hsmedia/net-guard';
import { DEFAULT_OEMBED_PROVIDERS, compileOEmbedProviders, type OEmbedMatcher } from '../oembed-provider-list.js';
import { compileUrlDenyRules, type UrlDenyMatcher } from '../url-rules.js';
import type { UrlPreviewerOptions } from '../url-previewer-options.js';

type NumericOption =
  | 'maxPageBytes'
  | 'maxImageBytes'
  | 'maxImagePixels'
  | 'maxRedirects'
  | 'timeoutMs'
  | 'cacheTtlMs'
  | 'errorCacheTtlMs'
  | 'cacheMaxEntries';

/** Defaults of the previewer's options (`UrlPreviewerOptions`). */
export const URL_PREVIEWER_DEFAULTS: Readonly<Record<NumericOption, number> & Record<'userAgent' | 'acceptLanguage', string>> = {
  userAgent: 'hsmedia-url-preview/0.1 (bot; Matrix URL preview)',
  acceptLanguage: 'en',
  maxPageBytes: 10 * 1024 * 1024,
  maxImageBytes: 10 * 1024 * 1024,
  maxImagePixels: 32_000_000,
  maxRedirects: 5,
  timeoutMs: 10_000,
  cacheTtlMs: 60 * 60 * 1000,
  errorCacheTtlMs: 60 * 1000,
  cacheMaxEntries: 1000,
};

/** The previewer's options but the image store: what a configuration decides. */
export type UrlPreviewerSettingsOptions = Omit<UrlPreviewerOptions, 'storeImage'>;

/**
 * Representative non-public addresses, per family. If the effective policy
 * lets every one of a family through, there is no IP range deny list in
 * effect for it, and previews would be an open proxy into the network.
 */
const SENTINELS: Readonly<Record<'IPv4' | 'IPv6', readonly string[]>> = {
  IPv4: ['127.0.0.1', '10.0.0.1', '172.16.0.1', '192.168.0.1', '169.254.169.254', '100.64.0.1'],
  IPv6: ['::1', 'fc00::1', 'fe80::1', 'fec0::1'],
};

/** The checked options (defaults applied); a value with a problem is its default. */
export interface CheckedPreviewerOptions {
  readonly policy: AddressPolicy;
  readonly denyUrl: UrlDenyMatcher;
  readonly oEmbedFor: OEmbedMatcher;
  readonly maxRedirects: number;
  readonly userAgent: string;
  readonly acceptLanguage: string;
  readonly maxPageBytes: number;
  readonly maxImageBytes: number;
  readonly maxImagePixels: number;
  readonly timeoutMs: number;
  readonly cacheTtlMs: number;
  readonly errorCacheTtlMs: number;
}

function positiveInteger(
  options: UrlPreviewerSettingsOptions,
  key: NumericOption,
  problems: string[],
  allowZero: boolean = false,
): number {
  const value = options[key] ?? URL_PREVIEWER_DEFAULTS[key];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < (allowZero ? 0 : 1)) {
    problems.push(`${key} must be a${allowZero ? ' non-negative' : ' positive'} integer, got ${JSON.stringify(value)}`);
    return URL_PREVIEWER_DEFAULTS[key];
  }
  return value;
}

function headerValue(options: UrlPreviewerSettingsOptions, key: 'userAgent' | 'acceptLanguage', problems: string[]): string {
  const value = options[key] ?? URL_PREVIEWER_DEFAULTS[key];
  // No CR/LF/control characters: the value goes verbatim into a request header.
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
  if (typeof value !== 'string' || value.trim() === '' || /[\0-\x1f\x7f]/.test(value)) {
    problems.push(`${key} must be a non-empty header value`);
    return URL_PREVIEWER_DEFAULTS[key];
  }
  return value;
}

function buildPolicy(options: UrlPreviewerSettingsOptions, problems: string[]): AddressPolicy {
  let policy: AddressPolicy = () => false;
  try {
    policy = createAddressPolicy({ allow: options.ipRangeAllowList ?? [], deny: options.ipRangeDenyList ?? [] });
  } catch (error) {
    problems.push((error as Error).message);
    return policy;
  }
  for (const [family, addresses] of Object.entries(SENTINELS)) {
    if (addresses.every((address) => policy(address))) {
      problems.push(
        `no IP range deny list is in effect for ${family} (the allow list opens every private range); URL previews ` +
          `would reach the internal network. Narrow ipRangeAllowList or add ipRangeDenyList entries`,
      );
    }
  }
  return policy;
}

/**
 * Checks every option but `storeImage`, adding each problem to `problems`
 * (in a fixed order: address policy, URL deny rules, oEmbed providers,
 * limits and headers, `probeImage`).
 */
export function checkPreviewerOptions(options: UrlPreviewerSettingsOptions, problems: string[]): CheckedPreviewerOptions {
  const policy = buildPolicy(options, problems);
  const denyUrl = compileUrlDenyRules(options.urlDenyList ?? [], problems);
  const oEmbedFor = compileOEmbedProviders(options.oEmbed?.providers ?? DEFAULT_OEMBED_PROVIDERS, problems);
  const maxRedirects = positiveInteger(options, 'maxRedirects', problems, true);
  const userAgent = headerValue(options, 'userAgent', problems);
  const acceptLanguage = headerValue(options, 'acceptLanguage', problems);
  const checked = {
    policy,
    denyUrl,
    oEmbedFor,
    maxRedirects,
    userAgent,
    acceptLanguage,
    maxPageBytes: positiveInteger(options, 'maxPageBytes', problems),
    maxImageBytes: positiveInteger(options, 'maxImageBytes', problems),
    maxImagePixels: positiveInteger(options, 'maxImagePixels', problems),
    timeoutMs: positiveInteger(options, 'timeoutMs', problems),
    cacheTtlMs: positiveInteger(options, 'cacheTtlMs', problems, true),
    errorCacheTtlMs: positiveInteger(options, 'errorCacheTtlMs', problems, true),
  };
  positiveInteger(options, 'cacheMaxEntries', problems, true);
  if (options.probeImage !== undefined && typeof options.probeImage !== 'function') problems.push('probeImage must be a function');
  return checked;
}
