/**
 * `@hsmedia/url-preview/config`: the previewer's options checked without
 * building a previewer, so that a configuration can be validated without
 * loading the fetcher, the HTML parser or the cache.
 */
import { checkPreviewerOptions, type UrlPreviewerSettingsOptions } from './internal/option-checks.js';

export { URL_PREVIEWER_DEFAULTS, type UrlPreviewerSettingsOptions } from './internal/option-checks.js';

/**
 * Every problem `createUrlPreviewer` would report for these options and any
 * `storeImage` function: its `PreviewConfigError.problems`, same texts, same
 * order. Empty when the options are usable.
 */
export function urlPreviewerOptionProblems(options: UrlPreviewerSettingsOptions): string[] {
  const problems: string[] = [];
  checkPreviewerOptions(options, problems);
  return problems;
}
