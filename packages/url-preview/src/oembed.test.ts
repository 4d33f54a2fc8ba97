import { describe, expect, it } from 'vitest';
import { DEFAULT_OEMBED_PROVIDERS, compileOEmbedProviders, oEmbedSchemeToRegExp, previewFromOEmbed } from './oembed.js';

describe('oEmbed providers', () => {
  const match = compileOEmbedProviders(DEFAULT_OEMBED_PROVIDERS);

  it('the bundled list compiles without problems', () => {
    const problems: string[] = [];
    compileOEmbedProviders(DEFAULT_OEMBED_PROVIDERS, problems);
    expect(problems).toEqual([]);
    expect(DEFAULT_OEMBED_PROVIDERS.map((p) => p.provider_name)).toEqual(
      expect.arrayContaining(['YouTube', 'Vimeo', 'Twitter', 'Reddit', 'Spotify', 'SoundCloud', 'TikTok', 'Flickr']),
    );
  });

  it.each([
    ['https://www.youtube.com/watch?v=dQw4w9WgXcQ', 'https://www.youtube.com/oembed'],
    ['http://youtu.be/dQw4w9WgXcQ', 'https://www.youtube.com/oembed'],
    ['https://x.com/matrixdotorg/status/1', 'https://publish.twitter.com/oembed'],
    ['https://vimeo.com/123', 'https://vimeo.com/api/oembed.json'],
    ['https://open.spotify.com/track/abc', 'https://open.spotify.com/oembed'],
    ['https://www.flickr.com/photos/someone/1', 'https://www.flickr.com/services/oembed/'],
  ])('maps %s to its endpoint', (url, endpoint) => {
    const request = match(url);
    expect(request).toBeDefined();
    const parsed = new URL(request!);
    expect(`${parsed.origin}${parsed.pathname}`).toBe(endpoint);
    expect(parsed.searchParams.get('url')).toBe(url);
    expect(parsed.searchParams.get('format')).toBe('json');
  });

  it('does not let a host wildcard escape the host', () => {
    expect(match('https://evil.example/?.youtube.com/watch')).toBeUndefined();
    expect(match('https://evil.example/#.youtube.com/watch')).toBeUndefined();
    expect(match('https://www.youtube.com.evil.example/watch')).toBeUndefined();
    expect(match('https://example.org/')).toBeUndefined();
    expect(oEmbedSchemeToRegExp('https://*.youtube.com/watch*')!.test('https://user@evil.example/.youtube.com/watch')).toBe(false);
  });

  it('reports malformed provider entries', () => {
    const problems: string[] = [];
    compileOEmbedProviders(
      [
        { provider_name: 'A', endpoints: [{ schemes: ['ftp://x/*'], url: 'https://a.example/oembed' }] },
        { provider_name: 'B', endpoints: [{ schemes: ['https://b.example/*'], url: 'not a url' }] },
        { provider_name: 'C' } as never,
      ],
      problems,
    );
    expect(problems).toHaveLength(3);
  });
});

describe('previewFromOEmbed', () => {
  it('maps a photo', () => {
    expect(previewFromOEmbed({ type: 'photo', url: '/p.jpg', title: 'Pic', provider_name: 'Flickr', author_name: 'Ann' }, 'https://flickr.example/oembed')).toEqual({
      openGraph: { 'og:title': 'Pic', 'og:site_name': 'Flickr', 'og:description': 'Ann' },
      imageUrl: 'https://flickr.example/p.jpg',
    });
  });

  it('maps a rich response, taking the text of its html', () => {
    const result = previewFromOEmbed(
      { type: 'rich', html: '<blockquote><p>Tweet &amp; text</p>— Someone<script src="x"></script></blockquote>', thumbnail_url: 'https://t.example/t.png' },
      'https://publish.twitter.com/oembed',
    );
    expect(result).toEqual({ openGraph: { 'og:description': 'Tweet & text — Someone' }, imageUrl: 'https://t.example/t.png' });
  });

  it('refuses what is not an object, and ignores wrongly typed fields', () => {
    expect(previewFromOEmbed([], 'https://a.example/')).toBeUndefined();
    expect(previewFromOEmbed('x', 'https://a.example/')).toBeUndefined();
    expect(previewFromOEmbed({ title: 42, thumbnail_url: 'javascript:x' }, 'https://a.example/')).toEqual({ openGraph: {}, imageUrl: undefined });
  });
});
