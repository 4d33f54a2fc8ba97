import { requestJson, SYNAPSE_ADMIN } from '../api.js';
import { barChart } from '../chart.js';
import { formatBytes, h, replace } from '../dom.js';

interface UsageAnswer {
  readonly users: { user_id: string; media_count: number; media_length: number }[];
  readonly total: number;
}

const COLUMNS = [
  ['user_id', 'User'],
  ['media_count', 'Files'],
  ['media_length', 'Bytes'],
] as const;

/** Usage by user (Synapse's statistics endpoint): a sortable table and a chart of the biggest. */
export async function renderUsers(view: HTMLElement, params: URLSearchParams): Promise<void> {
  const orderBy = COLUMNS.some(([key]) => key === params.get('order_by')) ? params.get('order_by')! : 'media_length';
  const dir = params.get('dir') === 'f' ? 'f' : 'b';
  const answer = await requestJson<UsageAnswer>(`${SYNAPSE_ADMIN}/statistics/users/media?order_by=${orderBy}&dir=${dir}&limit=100`);
  const header = h('tr', {});
  for (const [key, label] of COLUMNS) {
    const sorted = key === orderBy;
    const nextDir = sorted && dir === 'b' ? 'f' : 'b';
    header.append(
      h('th', { scope: 'col', 'aria-sort': sorted ? (dir === 'b' ? 'descending' : 'ascending') : undefined },
        h('a', { href: `#/users?order_by=${key}&dir=${nextDir}`, class: 'sort' }, label, sorted ? (dir === 'b' ? ' ▼' : ' ▲') : '')),
    );
  }
  const body = h('tbody', {});
  for (const user of answer.users) {
    body.append(
      h('tr', {},
        h('td', {}, h('a', { href: `#/media?user=${encodeURIComponent(user.user_id)}` }, user.user_id)),
        h('td', { class: 'num' }, user.media_count),
        h('td', { class: 'num' }, formatBytes(user.media_length))),
    );
  }
  const top = [...answer.users].sort((a, b) => b.media_length - a.media_length).slice(0, 10);
  replace(
    view,
    h('h1', { tabindex: -1 }, 'Users'),
    h('p', {}, `${answer.total} users with uploads. Select a user to see their media.`),
    h('figure', {}, barChart('Bytes stored by the ten biggest uploaders', top.map((u) => ({ label: u.user_id, value: u.media_length, description: `${u.user_id}: ${formatBytes(u.media_length)} in ${u.media_count} files` }))), h('figcaption', {}, 'Bytes stored, biggest uploaders')),
    h('div', { class: 'table-wrap' }, h('table', { id: 'users-table' }, h('caption', {}, 'Media usage by user'), h('thead', {}, header), body)),
  );
}
