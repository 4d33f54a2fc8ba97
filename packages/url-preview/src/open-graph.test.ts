import { describe, expect, it } from 'vitest';
import { HtmlMetadataCollector, parseHtmlMetadata } from './html-metadata.js';
import { previewFromHtml, resolveHttpUrl, summarise } from './open-graph.js';

const page = 'https://site.example/dir/page.html';

describe('previewFromHtml', () => {
  it('keeps og:* text properties and leaves the image keys to the server', () => {
    const meta = parseHtmlMetadata(`<head>
      <meta property="og:title" content=" A   title ">
      <meta property="OG:Description" content="Desc">
      <meta property="og:title" content="second title is ignored">
      <meta property="og:image" content="/a.png"><meta property="og:image:width" content="1">
      <meta property="og:image:type" content="text/html"><meta property="og:image:alt" content="Alt text">
      <meta property="og:video" content="https://site.example/v.mp4">
      <meta property="og:empty" content="  ">
      <meta name="twitter:title" content="tw">
    </head>`);
    const preview = previewFromHtml(meta, page);
    expect(preview.openGraph).toEqual({
      'og:title': 'A title',
      'og:description': 'Desc',
      'og:image:alt': 'Alt text',
      'og:video': 'https://site.example/v.mp4',
    });
    expect(preview.imageUrl).toBe('https://site.example/a.png');
  });

  it('falls back to twitter: tags, then <title> and description', () => {
    const twitter = previewFromHtml(
      parseHtmlMetadata('<meta name="twitter:title" content="TW"><meta name="twitter:description" content="TD"><meta name="twitter:image" content="i.jpg"><title>T</title>'),
      page,
    );
    expect(twitter).toEqual({
      openGraph: { 'og:title': 'TW', 'og:description': 'TD' },
      imageUrl: 'https://site.example/dir/i.jpg',
      oEmbedUrl: undefined,
    });
    const plain = previewFromHtml(parseHtmlMetadata('<title>T &amp; U</title><meta name="description" content="D">'), page);
    expect(plain.openGraph).toEqual({ 'og:title': 'T & U', 'og:description': 'D' });
  });

  it('resolves image and oEmbed URLs against <base href>, and drops non-http ones', () => {
    const meta = parseHtmlMetadata(
      '<base href="https://cdn.example/assets/"><link rel="image_src" href="x.png"><link rel="alternate" type="application/json+oembed" href="/oembed?u=1">',
    );
    expect(previewFromHtml(meta, page)).toMatchObject({
      imageUrl: 'https://cdn.example/assets/x.png',
      oEmbedUrl: 'https://cdn.example/oembed?u=1',
    });
    const js = previewFromHtml(parseHtmlMetadata('<meta property="og:image" content="javascript:alert(1)">'), page);
    expect(js.imageUrl).toBeUndefined();
    expect(resolveHttpUrl('data:image/png;base64,AAAA', page)).toBeUndefined();
    expect(resolveHttpUrl('//other.example/a#frag', page)).toBe('https://other.example/a');
  });

  it('picks the largest declared body image, skipping tiny ones and data: URLs', () => {
    const meta = parseHtmlMetadata(
      '<body><img src="data:image/png;base64,AA"><img src="/spacer.gif" width="1" height="1"><img src="/a.png"><img src="/b.png" width="200" height="100"><img src="/c.png" width="300px" height="300"></body>',
    );
    expect(meta.images.map((i) => i.src)).toEqual(['/a.png', '/b.png', '/c.png']);
    expect(previewFromHtml(meta, page).imageUrl).toBe('https://site.example/c.png');
  });

  it('summarises long descriptions at a word boundary', () => {
    const long = 'word '.repeat(300);
    const preview = previewFromHtml(parseHtmlMetadata(`<meta property="og:description" content="${long}">`), page);
    const description = preview.openGraph['og:description']!;
    expect(description.length).toBeLessThanOrEqual(500);
    expect(description.endsWith('word…')).toBe(true);
    expect(summarise('short')).toBe('short');
  });

  it('ignores paragraphs in navigation, scripts and the head', () => {
    const meta = parseHtmlMetadata(
      '<head><title>x</title><script>var p = "<p>no</p>";</script></head><body><header><p>Site header</p></header><script>document.write("<p>no</p>")</script><p>Real <em>content</em> here.</p></body>',
    );
    expect(meta.paragraphText).toBe('Real content here.');
  });
});

describe('HtmlMetadataCollector', () => {
  it('is done once the head gave title, description and image', () => {
    const collector = new HtmlMetadataCollector();
    collector.write('<html><head><meta property="og:description" content="d"><meta property="og:image" content="/i.png">');
    expect(collector.done).toBe(false); // still in the head
    collector.write('</head><bo');
    expect(collector.done).toBe(true);
  });

  it('reads into the body only as far as the fallbacks need', () => {
    const collector = new HtmlMetadataCollector();
    collector.write('<head><title>t</title><meta name="description" content="d"></head><body><p>text</p>');
    expect(collector.done).toBe(false); // no image yet
    collector.write('<img src="/pic.jpg" width="400" height="300">');
    expect(collector.done).toBe(true);
  });

  it('treats a body element as the end of a head that is never closed', () => {
    const collector = new HtmlMetadataCollector();
    collector.write('<meta property="og:description" content="d"><meta property="og:image" content="/i.png"><div>');
    expect(collector.done).toBe(true);
  });

  it('handles markup split across chunks and an unterminated title', () => {
    const collector = new HtmlMetadataCollector();
    for (const piece of ['<he', 'ad><me', 'ta prop', 'erty="og:title" cont', 'ent="Split &am', 'p; joined"><title>Open ti', 'tle']) {
      collector.write(piece);
    }
    const meta = collector.end();
    expect(meta.meta.get('og:title')).toBe('Split & joined');
    expect(meta.title).toBe('Open title');
  });

  it('bounds what it keeps from hostile pages', () => {
    const metas = Array.from({ length: 1000 }, (_, i) => `<meta property="og:p${i}" content="${'v'.repeat(10_000)}">`).join('');
    const meta = parseHtmlMetadata(`<head>${metas}</head>`);
    expect(meta.meta.size).toBe(200);
    expect([...meta.meta.values()].every((v) => v.length <= 4096)).toBe(true);
    expect(Object.keys(previewFromHtml(meta, page).openGraph)).toHaveLength(50);
  });
});
