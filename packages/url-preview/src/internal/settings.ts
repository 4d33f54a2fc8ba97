/**
 * The previewer's options, validated all at once and resolved to the
 * settings it runs with, and the normalisation of a requested URL.
 */
import { createAddressPolicy, GuardedHttpClient, type AddressPolicy } from '@hsmedia/net-guard';
import { noopLogger, systemClock, type Clock, type Logger } from '@hsmedia/runtime';
import { PreviewConfigError, PreviewError } from '../errors.js';
import { probeImageHeader, type ImageHeader } from '../image-probe.js';
import { DEFAULT_OEMBED_PROVIDERS, compileOEmbedProviders, type OEmbedMatcher } from '../oembed.js';
import { compileUrlDenyRules, type UrlDenyMatcher } from '../url-rules.js';
import type { StorePreviewImage, UrlPreviewerOptions } from '../url-previewer-options.js';
import type { GuardedFetchContext } from './guarded-fetch.js';

type NumericOption =
  | 'maxPageBytes'
  | 'maxImageBytes'
  | 'maxImagePixels'
  | 'maxRedirects'
  | 'timeoutMs'
  | 'cacheTtlMs'
  | 'errorCacheTtlMs'
  | 'cacheMaxEntries';

/** Defaults of {@link UrlPreviewerOptions}. */
export const DEFAULTS: Readonly<Record<NumericOption, number> & Record<'userAgent' | 'acceptLanguage', string>> = {
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

const MAX_URL_LENGTH = 4096;

/**
 * Representative non-public addresses, per family. If the effective policy
 * lets every one of a family through, there is no IP range deny list in
 * effect for it, and previews would be an open proxy into the network.
 */
const SENTINELS: Readonly<Record<'IPv4' | 'IPv6', readonly string[]>> = {
  IPv4: ['127.0.0.1', '10.0.0.1', '172.16.0.1', '192.168.0.1', '169.254.169.254', '100.64.0.1'],
  IPv6: ['::1', 'fc00::1', 'fe80::1', 'fec0::1'],
};

/** The validated options the previewer runs with. */
export interface Settings {
  readonly storeImage: StorePreviewImage;
  readonly denyUrl: UrlDenyMatcher;
  readonly oEmbedFor: OEmbedMatcher;
  readonly oEmbedDiscovery: boolean;
  readonly fetchContext: GuardedFetchContext;
  readonly maxPageBytes: number;
  readonly maxImageBytes: number;
  readonly maxImagePixels: number;
  readonly timeoutMs: number;
  readonly cacheTtlMs: number;
  readonly errorCacheTtlMs: number;
  readonly probeImage: (prefix: Uint8Array) => ImageHeader | null;
  readonly logger: Logger;
  readonly clock: Clock;
}

function positiveInteger(
  options: UrlPreviewerOptions,
  key: 'maxPageBytes' | 'maxImageBytes' | 'maxImagePixels' | 'timeoutMs' | 'cacheTtlMs' | 'errorCacheTtlMs' | 'cacheMaxEntries' | 'maxRedirects',
  problems: string[],
  allowZero: boolean = false,
): number {
  const value = options[key] ?? DEFAULTS[key];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < (allowZero ? 0 : 1)) {
    problems.push(`${key} must be a${allowZero ? ' non-negative' : ' positive'} integer, got ${JSON.stringify(value)}`);
    return DEFAULTS[key];
  }
  return value;
}

function headerValue(options: UrlPreviewerOptions, key: 'userAgent' | 'acceptLanguage', problems: string[]): string {
  const value = options[key] ?? DEFAULTS[key];
  // No CR/LF/control characters: the value goes verbatim into a request header.
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
  if (typeof value !== 'string' || value.trim() === '' || /[\0-\x1f\x7f]/.test(value)) {
    problems.push(`${key} must be a non-empty header value`);
    return DEFAULTS[key];
  }
  return value;
}

function buildPolicy(options: UrlPreviewerOptions, problems: string[]): AddressPolicy {
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

/** Checks every option at once; throws {@link PreviewConfigError} listing all problems. */
export function validate(options: UrlPreviewerOptions): Settings {
  const problems: string[] = [];
  if (typeof options?.storeImage !== 'function') problems.push('storeImage must be a function');
  const policy = buildPolicy(options, problems);
  const denyUrl = compileUrlDenyRules(options.urlDenyList ?? [], problems);
  const oEmbedFor = compileOEmbedProviders(options.oEmbed?.providers ?? DEFAULT_OEMBED_PROVIDERS, problems);
  const maxRedirects = positiveInteger(options, 'maxRedirects', problems, true);
  const userAgent = headerValue(options, 'userAgent', problems);
  const acceptLanguage = headerValue(options, 'acceptLanguage', problems);
  const settings = {
    maxPageBytes: positiveInteger(options, 'maxPageBytes', problems),
    maxImageBytes: positiveInteger(options, 'maxImageBytes', problems),
    maxImagePixels: positiveInteger(options, 'maxImagePixels', problems),
    timeoutMs: positiveInteger(options, 'timeoutMs', problems),
    cacheTtlMs: positiveInteger(options, 'cacheTtlMs', problems, true),
    errorCacheTtlMs: positiveInteger(options, 'errorCacheTtlMs', problems, true),
  };
  positiveInteger(options, 'cacheMaxEntries', problems, true);
  if (options.probeImage !== undefined && typeof options.probeImage !== 'function') problems.push('probeImage must be a function');
  if (problems.length > 0) throw new PreviewConfigError(problems);

  const checkUrl = (url: URL): void => {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new PreviewError('invalid_url', `Only http and https URLs can be previewed, not ${url.protocol}`);
    }
    if (denyUrl(url)) throw new PreviewError('url_denied', 'URL blocked');
  };
  return {
    storeImage: options.storeImage,
    denyUrl,
    oEmbedFor,
    oEmbedDiscovery: options.oEmbed?.discovery ?? true,
    fetchContext: {
      // No keep-alive: every request opens (and checks) its own connection.
      client: new GuardedHttpClient({ policy, ...(options.lookup === undefined ? {} : { lookup: options.lookup }) }),
      userAgent,
      acceptLanguage,
      checkUrl,
      maxRedirects,
    },
    ...settings,
    probeImage: options.probeImage ?? probeImageHeader,
    logger: options.logger ?? noopLogger,
    clock: options.clock ?? systemClock,
  };
}

/** Parses and normalises the requested URL (fragment dropped), or throws `invalid_url`. */
export function normaliseUrl(raw: string): URL {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_URL_LENGTH) {
    throw new PreviewError('invalid_url', `The URL must be 1 to ${MAX_URL_LENGTH} characters long`);
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new PreviewError('invalid_url', 'The URL is not a valid absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new PreviewError('invalid_url', `Only http and https URLs can be previewed, not ${url.protocol}`);
  }
  // Credentials in a preview URL would be sent to the site on the user's behalf.
  if (url.username !== '' || url.password !== '') throw new PreviewError('invalid_url', 'URLs with credentials are not previewed');
  url.hash = '';
  return url;
}
