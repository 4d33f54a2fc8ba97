/**
 * The previewer's options, validated all at once and resolved to the
 * settings it runs with, and the normalisation of a requested URL.
 */
import { GuardedHttpClient } from '@hsmedia/net-guard';
import { noopLogger, systemClock, type Clock, type Logger } from '@hsmedia/runtime';
import { URL_PREVIEWER_DEFAULTS, checkPreviewerOptions, type CheckedPreviewerOptions } from './option-checks.js';
import { PreviewConfigError, PreviewError } from '../errors.js';
import { probeImageHeader, type ImageHeader } from '../image-probe.js';
import type { StorePreviewImage, UrlPreviewerOptions } from '../url-previewer-options.js';
import type { GuardedFetchContext } from './guarded-fetch.js';

/** Defaults of {@link UrlPreviewerOptions}. */
export const DEFAULTS: typeof URL_PREVIEWER_DEFAULTS = URL_PREVIEWER_DEFAULTS;

const MAX_URL_LENGTH = 4096;

/** The validated options the previewer runs with: the checked ones (the fetch settings folded into `fetchContext`) and its collaborators. */
export interface Settings extends Omit<CheckedPreviewerOptions, 'policy' | 'maxRedirects' | 'userAgent' | 'acceptLanguage'> {
  readonly storeImage: StorePreviewImage;
  readonly oEmbedDiscovery: boolean;
  readonly fetchContext: GuardedFetchContext;
  readonly probeImage: (prefix: Uint8Array) => ImageHeader | null;
  readonly logger: Logger;
  readonly clock: Clock;
}

/** Checks every option at once; throws {@link PreviewConfigError} listing all problems. */
export function validate(options: UrlPreviewerOptions): Settings {
  const problems: string[] = [];
  if (typeof options?.storeImage !== 'function') problems.push('storeImage must be a function');
  const { policy, denyUrl, oEmbedFor, maxRedirects, userAgent, acceptLanguage, ...settings } = checkPreviewerOptions(options, problems);
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
