import { ADMIN, requestJson } from '../api.js';
import { barChart, columnChart } from '../chart.js';
import { formatBytes, h, replace } from '../dom.js';

interface Bucket {
  readonly start_ts: number;
  readonly media_count: number;
  readonly media_length: number;
}

interface StorageAnswer {
  readonly local: { media_count: number; media_length: number };
  readonly remote: { media_count: number; media_length: number; budget: number | null };
  readonly quarantined: { media_count: number; media_length: number };
  readonly top_origins: { server_name: string; local: boolean; media_count: number; media_length: number }[];
  readonly per_day: { from_ts: number; until_ts: number; local: Bucket[]; remote: Bucket[] };
}

const DAY_MS = 86_400_000;

function stat(label: string, value: string, detail: string): HTMLElement {
  return h('div', { class: 'stat' }, h('span', { class: 'stat-label' }, label), h('span', { class: 'stat-value' }, value), h('span', { class: 'meta' }, detail));
}

/** Storage from the server's own data: totals, the remote cache against its budget, top origins, bytes per day. */
export async function renderStorage(view: HTMLElement): Promise<void> {
  const answer = await requestJson<StorageAnswer>(`${ADMIN}/storage?days=30`);
  const { budget } = answer.remote;
  const days: { label: string; local: number; remote: number; description: string }[] = [];
  const local = new Map(answer.per_day.local.map((b) => [b.start_ts, b.media_length]));
  const remote = new Map(answer.per_day.remote.map((b) => [b.start_ts, b.media_length]));
  for (let start = answer.per_day.from_ts; start < answer.per_day.until_ts; start += DAY_MS) {
    const day = new Date(start).toISOString().slice(0, 10);
    const l = local.get(start) ?? 0;
    const r = remote.get(start) ?? 0;
    days.push({ label: day, local: l, remote: r, description: `${day}: ${formatBytes(l)} local, ${formatBytes(r)} remote` });
  }
  const budgetView = budget === null
    ? h('p', {}, `Remote cache: ${formatBytes(answer.remote.media_length)}; no space budget is set (retention.remote_cache_max_size).`)
    : h('p', {},
        h('label', { for: 'budget' }, `Remote cache ${formatBytes(answer.remote.media_length)} of ${formatBytes(budget)} budget `),
        h('meter', { id: 'budget', min: 0, max: budget, value: Math.min(answer.remote.media_length, budget), high: budget * 0.9 }));
  replace(
    view,
    h('h1', { tabindex: -1 }, 'Storage'),
    h('div', { class: 'stats' },
      stat('Local media', formatBytes(answer.local.media_length), `${answer.local.media_count} files`),
      stat('Remote cache', formatBytes(answer.remote.media_length), `${answer.remote.media_count} files`),
      stat('Quarantined', formatBytes(answer.quarantined.media_length), `${answer.quarantined.media_count} files`)),
    budgetView,
    h('h2', {}, 'Bytes stored per day, last 30 days'),
    h('figure', {}, columnChart('Bytes of media still stored, by day of upload or caching: local below, remote above', days),
      h('figcaption', {}, 'By day the media arrived; media deleted since is not counted. Dark: local, light: remote.')),
    h('h2', {}, 'Top origins'),
    h('figure', {}, barChart('Bytes stored per origin server', answer.top_origins.map((o) => ({ label: o.server_name, value: o.media_length, description: `${o.server_name}: ${formatBytes(o.media_length)} in ${o.media_count} files` })))),
    h('div', { class: 'table-wrap' }, h('table', { id: 'origins-table' },
      h('caption', {}, 'Origins storing the most bytes'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Origin'), h('th', { scope: 'col' }, 'Files'), h('th', { scope: 'col' }, 'Bytes'))),
      h('tbody', {}, ...answer.top_origins.map((o) => h('tr', {},
        h('td', {}, h('a', { href: `#/media?origin=${encodeURIComponent(o.server_name)}` }, o.server_name), o.local ? ' (local)' : ''),
        h('td', { class: 'num' }, o.media_count),
        h('td', { class: 'num' }, formatBytes(o.media_length))))))),
  );
}
