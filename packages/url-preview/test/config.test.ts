import { describe, expect, it } from 'vitest';
import { PreviewConfigError, createUrlPreviewer, isPreviewError, type UrlPreviewerOptions } from '@hsmedia/url-preview';
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
