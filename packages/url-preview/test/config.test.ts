import { describe, expect, it } from 'vitest';
import { PreviewConfigError, createUrlPreviewer, isPreviewError, type UrlPreviewerOptions } from '@hsmedia/url-preview';
import { URL_PREVIEWER_DEFAULTS, urlPreviewerOptionProblems } from '@hsmedia/url-preview/config';
import { memoryImageStore, requester } from './helpers.js';

const storeImage = memoryImageStore().storeImage;

function problemsOf(options: UrlPreviewerOptions): readonly string[] {
  try {
    createUrlPreviewer(options);
  } catch (error) {
    if (error instanceof PreviewConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('createUrlPreviewer configuration', () => {
  it('accepts the defaults: every non-public range is refused', () => {
    expect(problemsOf({ storeImage })).toEqual([]);
    expect(problemsOf({ storeImage, ipRangeAllowList: ['127.0.0.1/32'], ipRangeDenyList: ['203.0.113.0/24'] })).toEqual([]);
  });

  it.each([
    ['all of IPv4', ['0.0.0.0/0']],
    ['all of IPv6', ['::/0']],
    ['every private IPv4 range', ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '127.0.0.0/8', '169.254.0.0/16', '100.64.0.0/10']],
  ])('refuses to construct when the allow list leaves no deny list (%s)', (_what, allow) => {
    const problems = problemsOf({ storeImage, ipRangeAllowList: allow });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/no IP range deny list/);
  });

  it('reports every problem at once', () => {
    const options = {
      storeImage: undefined,
      ipRangeAllowList: ['not-a-cidr'],
      urlDenyList: [{}],
      maxPageBytes: -1,
      timeoutMs: 1.5,
      maxRedirects: 'five',
      userAgent: 'bad\r\nInjected: header',
      oEmbed: { providers: [{ provider_name: 'X', endpoints: [{ schemes: ['nope'], url: 'https://x.example/' }] }] },
    } as unknown as UrlPreviewerOptions;
    let error: unknown;
    try {
      createUrlPreviewer(options);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PreviewConfigError);
    const problems = (error as PreviewConfigError).problems;
    expect(problems.length).toBe(8);
    expect((error as Error).message).toMatch(/^Invalid URL preview configuration: /);
  });

  it('copies the caller’s lists: changing them later changes nothing', async () => {
    const allow = ['127.0.0.1/32'];
    const previewer = createUrlPreviewer({ storeImage, ipRangeAllowList: allow });
    allow.push('127.0.0.0/8');
    const error = await previewer.preview('http://127.0.0.2:9/', { requester }).catch((e: unknown) => e);
    expect(isPreviewError(error) && error.code).toBe('address_blocked');
  });
});

describe('@hsmedia/url-preview/config', () => {
  it.each([
    ['the defaults', {}],
    ['a narrow allow list and an extra deny list', { ipRangeAllowList: ['127.0.0.1/32'], ipRangeDenyList: ['203.0.113.0/24'] }],
    ['an allow list opening IPv4', { ipRangeAllowList: ['0.0.0.0/0'] }],
    ['an allow list opening IPv6', { ipRangeAllowList: ['::/0'] }],
    ['a bad deny list entry', { ipRangeDenyList: ['10.0.0.0/33'] }],
    [
      'every kind of problem',
      {
        ipRangeAllowList: ['not-a-cidr'],
        urlDenyList: [{}, { host: '^(' }, { port: 8080, bogus: 'x' }],
        maxPageBytes: -1,
        maxImageBytes: 0,
        maxImagePixels: Number.NaN,
        timeoutMs: 1.5,
        cacheTtlMs: -1,
        errorCacheTtlMs: 'soon',
        cacheMaxEntries: -2,
        maxRedirects: 'five',
        userAgent: 'bad\r\nInjected: header',
        acceptLanguage: ' ',
        probeImage: 'yes',
        oEmbed: { providers: [{ provider_name: 'X', endpoints: [{ schemes: ['nope'], url: 'https://x.example/' }, { url: 'ftp://x' }] }, {}] },
      },
    ],
  ])('gives exactly the problems createUrlPreviewer reports, without building a previewer (%s)', (_what, options) => {
    const settings = options as unknown as Omit<UrlPreviewerOptions, 'storeImage'>;
    expect(urlPreviewerOptionProblems(settings)).toEqual(problemsOf({ ...settings, storeImage }));
  });

  it('finds problems where there are some, and exports the defaults', () => {
    expect(urlPreviewerOptionProblems({ ipRangeAllowList: ['0.0.0.0/0'] })).toHaveLength(1);
    expect(urlPreviewerOptionProblems({ maxPageBytes: 0, timeoutMs: -1 })).toEqual([
      'maxPageBytes must be a positive integer, got 0',
      'timeoutMs must be a positive integer, got -1',
    ]);
    expect(URL_PREVIEWER_DEFAULTS.maxRedirects).toBe(5);
  });
});
