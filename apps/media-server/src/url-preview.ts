/**
 * URL previews in the reference server: `@hsmedia/url-preview` composed with
 * the media repository (the preview image is stored as local media of the
 * requesting user) for `@hsmedia/media-routes`' `preview` option. The
 * `url_preview` config section is resolved and checked in
 * `url-preview-config.ts`, which the config loader imports without the previewer.
 */
import { readFile } from 'node:fs/promises';
import type { MediaService } from '@hsmedia/media-core';
import type { Logger } from '@hsmedia/runtime';
import type { PreviewUrlOptions } from '@hsmedia/media-routes';
import {
  PreviewConfigError,
  createUrlPreviewer,
  previewErrorToMatrixError,
  type OEmbedProvider,
  type SharedPreviewCache,
  type StorePreviewImage,
  type UrlPreviewerOptions,
} from '@hsmedia/url-preview';
import { keyedProblem, previewerSettingsOf, urlPreviewConfigProblems, type UrlPreviewConfig, type UrlPreviewConfigProblem } from './url-preview-config.js';

export {
  DEFAULT_URL_PREVIEW_IP_RANGE_DENYLIST,
  URL_PREVIEW_DEFAULTS,
  resolveUrlPreviewConfig,
  urlPreviewConfigProblems,
  type UrlPreviewConfig,
  type UrlPreviewConfigProblem,
  type UrlPreviewFileSection,
} from './url-preview-config.js';

function previewerOptions(
  config: UrlPreviewConfig,
  storeImage: StorePreviewImage,
  extra: {
    readonly providers?: readonly OEmbedProvider[];
    readonly logger?: Logger;
    readonly maxUploadBytes?: number;
    readonly sharedCache?: SharedPreviewCache;
  },
): UrlPreviewerOptions {
  const settings = previewerSettingsOf(config, extra.maxUploadBytes);
  return {
    storeImage,
    ...settings,
    oEmbed: { ...settings.oEmbed, ...(extra.providers === undefined ? {} : { providers: extra.providers }) },
    ...(extra.logger === undefined ? {} : { logger: extra.logger }),
    ...(extra.sharedCache === undefined ? {} : { sharedCache: extra.sharedCache }),
  };
}

/** `url_preview` is unusable; `problems` are `url_preview.<key>: message` lines. */
export class UrlPreviewConfigError extends Error {
  override readonly name: 'UrlPreviewConfigError' = 'UrlPreviewConfigError';
  readonly problems: readonly string[];
  constructor(problems: readonly UrlPreviewConfigProblem[]) {
    const lines = problems.map((problem) => `${['url_preview', ...problem.path].join('.')}: ${problem.message}`);
    super(`invalid configuration: ${lines.join('; ')}`);
    this.problems = Object.freeze(lines);
  }
}

async function readProviders(path: string): Promise<OEmbedProvider[]> {
  const where = ['oembed', 'providers_file'];
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UrlPreviewConfigError([{ path: where, message: `${path}: ${code === 'ENOENT' ? 'file not found' : (error as Error).message}` }]);
  }
  let providers: unknown;
  try {
    providers = JSON.parse(text);
  } catch (error) {
    throw new UrlPreviewConfigError([{ path: where, message: `${path}: not JSON (${(error as Error).message})` }]);
  }
  if (!Array.isArray(providers)) {
    throw new UrlPreviewConfigError([{ path: where, message: `${path}: expected a list of providers (oembed.com providers.json format)` }]);
  }
  return providers as OEmbedProvider[];
}

/**
 * Stores a preview image through {@link MediaService.upload}, as local media
 * of the user who asked (no filename; the probed content type). The bytes
 * are counted while they stream, for `matrix:image:size`, and refused past
 * `maxBytes`; nothing is buffered.
 */
export function storePreviewImageWith(media: MediaService): StorePreviewImage {
  return async (stream, contentType, { maxBytes, signal, requester }) => {
    let size = 0;
    const counted = stream.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          size += chunk.byteLength;
          if (size > maxBytes) throw new RangeError(`preview image exceeds ${maxBytes} bytes`);
          controller.enqueue(chunk);
        },
      }),
      { signal },
    );
    const { contentUri } = await media.upload({ body: counted, contentType, requester, signal });
    return { mxcUri: contentUri, size };
  };
}

/** What {@link createUrlPreviewRoute} needs of the server. */
export interface UrlPreviewRouteContext {
  readonly media: MediaService;
  /** Preview images are uploads: capped at the upload limit too. */
  readonly maxUploadBytes: number;
  readonly logger?: Logger;
  /** Previews shared by every process of the deployment (the database's `url_previews` table); none: per process. */
  readonly sharedCache?: SharedPreviewCache | undefined;
}

/**
 * The `preview` option of `mountMediaRoutes` for this config, or undefined
 * when previews are disabled (the endpoints then answer 404
 * `M_UNRECOGNIZED`, as Synapse does: the spec defines no answer for it,
 * https://spec.matrix.org/v1.12/client-server-api/#get_matrixclientv1mediapreview_url). Reads the oEmbed
 * providers file.
 *
 * @throws {UrlPreviewConfigError} with every problem, keyed by config key.
 */
export async function createUrlPreviewRoute(
  config: UrlPreviewConfig,
  context: UrlPreviewRouteContext,
): Promise<PreviewUrlOptions | undefined> {
  if (!config.enabled) return undefined;
  const problems = urlPreviewConfigProblems(config);
  if (problems.length > 0) throw new UrlPreviewConfigError(problems);
  const providers = config.oEmbed.providersFile === undefined ? undefined : await readProviders(config.oEmbed.providersFile);
  let previewer;
  try {
    previewer = createUrlPreviewer(
      previewerOptions(config, storePreviewImageWith(context.media), {
        maxUploadBytes: context.maxUploadBytes,
        ...(context.sharedCache === undefined ? {} : { sharedCache: context.sharedCache }),
        ...(providers === undefined ? {} : { providers }),
        ...(context.logger === undefined ? {} : { logger: context.logger }),
      }),
    );
  } catch (error) {
    if (error instanceof PreviewConfigError) throw new UrlPreviewConfigError(error.problems.map(keyedProblem));
    throw error;
  }
  return { previewer, mapError: previewErrorToMatrixError };
}
