import { ADMIN, requestJson, type MediaItem } from '../api.js';
import { announce, formatBytes, formatTime, h, replace } from '../dom.js';
import { fetchThumbnail, mayHaveThumbnail } from '../thumbnails.js';

/** The filter fields: each maps to one query parameter of `GET /_hsmedia/admin/v1/media`. */
const TYPES = ['', 'image/', 'video/', 'audio/', 'text/', 'application/'];
const FLAGS = [
  ['', 'any'],
  ['true', 'yes'],
  ['false', 'no'],
] as const;

function field(label: string, control: HTMLElement): HTMLElement {
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control);
}

function select(id: string, options: readonly (readonly [string, string])[], value: string): HTMLSelectElement {
  const element = h('select', { id, name: id });
  for (const [optionValue, label] of options) element.append(h('option', { value: optionValue, selected: optionValue === value }, label));
  return element;
}

/** `YYYY-MM-DD` → ms at 00:00 UTC; undefined for empty or malformed. */
function dayToMs(day: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) return undefined;
  const ms = Date.parse(`${day}T00:00:00Z`);
  return Number.isNaN(ms) ? undefined : ms;
}

function msToDay(ms: string | null): string {
  if (ms === null || !/^\d+$/.test(ms)) return '';
  return new Date(Number(ms)).toISOString().slice(0, 10);
}

/** A media card: thumbnail (for images and videos), name, type, size, origin and flags. Links to the detail view. */
export function mediaCard(item: MediaItem): HTMLElement {
  const name = item.upload_name ?? item.media_id;
  const picture = h('div', { class: 'thumb', 'aria-hidden': 'true' }, h('span', { class: 'type-badge' }, (item.media_type ?? 'pending').split('/')[0] ?? ''));
  const flags = h(
    'span',
    { class: 'flags' },
    item.local ? h('span', { class: 'badge' }, 'local') : h('span', { class: 'badge remote' }, 'remote'),
    item.quarantined && h('span', { class: 'badge danger' }, 'quarantined'),
    item.safe_from_quarantine && h('span', { class: 'badge safe' }, 'protected'),
    item.pending && h('span', { class: 'badge' }, 'pending'),
    item.scan_state !== undefined && h('span', { class: `badge scan-${item.scan_state}` }, `scan: ${item.scan_state}`),
  );
  const link = h(
    'a',
    { class: 'card', href: `#/media/${encodeURIComponent(item.server_name)}/${encodeURIComponent(item.media_id)}`, 'data-media-id': item.media_id },
    picture,
    h('span', { class: 'name' }, name),
    h('span', { class: 'meta' }, `${item.media_type ?? '—'} · ${formatBytes(item.media_length)}`),
    h('span', { class: 'meta' }, item.user_id ?? item.server_name),
    h('span', { class: 'meta' }, formatTime(item.created_ts)),
    flags,
  );
  if (!item.quarantined && !item.pending && mayHaveThumbnail(item.media_type)) {
    void fetchThumbnail(item.server_name, item.media_id, 96, 96).then((result) => {
      if ('url' in result) replace(picture, h('img', { src: result.url, alt: '', width: 96, height: 96 }));
    });
  }
  return h('li', {}, link);
}

/** The media view: the filter form and a grid of recent media, local and remote, newest first. */
export async function renderMedia(view: HTMLElement, params: URLSearchParams): Promise<void> {
  const user = h('input', { id: 'f-user', name: 'user', placeholder: '@alice:example.org', value: params.get('user') ?? '' });
  const origin = h('input', { id: 'f-origin', name: 'origin', placeholder: 'example.org', value: params.get('origin') ?? '' });
  const type = select('f-type', TYPES.map((t) => [t, t === '' ? 'any' : t.slice(0, -1)] as const), params.get('type') ?? '');
  const minSize = h('input', { id: 'f-min', name: 'min_size', type: 'number', min: 0, inputmode: 'numeric', value: params.get('min_size') ?? '' });
  const maxSize = h('input', { id: 'f-max', name: 'max_size', type: 'number', min: 0, inputmode: 'numeric', value: params.get('max_size') ?? '' });
  const since = h('input', { id: 'f-since', name: 'since', type: 'date', value: msToDay(params.get('since')) });
  const until = h('input', { id: 'f-until', name: 'until', type: 'date', value: msToDay(params.get('until')) });
  const quarantined = select('f-quarantined', FLAGS, params.get('quarantined') ?? '');
  const isProtected = select('f-protected', FLAGS, params.get('protected') ?? '');
  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'Filter media' },
    field('User', user),
    field('Origin server', origin),
    field('Type', type),
    field('Min size (bytes)', minSize),
    field('Max size (bytes)', maxSize),
    field('Uploaded from', since),
    field('Uploaded before', until),
    field('Quarantined', quarantined),
    field('Protected', isProtected),
    h('div', { class: 'field actions' }, h('button', { type: 'submit' }, 'Apply filters'), h('a', { href: '#/media' }, 'Clear')),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    const put = (name: string, value: string | number | undefined): void => {
      if (value !== undefined && value !== '') next.set(name, String(value));
    };
    put('user', user.value.trim());
    put('origin', origin.value.trim());
    put('type', type.value);
    put('min_size', minSize.value);
    put('max_size', maxSize.value);
    put('since', dayToMs(since.value));
    const untilMs = dayToMs(until.value);
    put('until', untilMs === undefined ? undefined : untilMs + 86_400_000);
    put('quarantined', quarantined.value);
    put('protected', isProtected.value);
    location.hash = `#/media?${next.toString()}`;
  });
  const grid = h('ul', { class: 'grid', id: 'media-grid', 'aria-label': 'Media, newest first' });
  const more = h('button', { type: 'button', id: 'more', hidden: true }, 'Load more');
  replace(view, h('h1', { tabindex: -1 }, 'Media'), form, grid, more);

  const query = new URLSearchParams();
  for (const name of ['user', 'origin', 'type', 'min_size', 'max_size', 'since', 'until', 'quarantined', 'protected']) {
    const value = params.get(name);
    if (value !== null && value !== '') query.set(name, value);
  }
  query.set('limit', '48');
  const load = async (from?: string): Promise<void> => {
    if (from !== undefined) query.set('from', from);
    const page = await requestJson<{ media: MediaItem[]; next_batch?: string }>(`${ADMIN}/media?${query.toString()}`);
    for (const item of page.media) grid.append(mediaCard(item));
    more.hidden = page.next_batch === undefined;
    more.onclick = page.next_batch === undefined ? null : () => void load(page.next_batch);
    if (grid.children.length === 0) grid.append(h('li', { class: 'empty' }, 'No media matches.'));
    announce(`${grid.querySelectorAll('a.card').length} media shown`);
  };
  await load();
}
