import { ADMIN, ApiError, request, requestJson, seg } from '../api.js';
import { announce, formatTime, h, replace } from '../dom.js';
import { askReason } from '../reason-dialog.js';

interface BlockedHashEntry {
  readonly sha256: string;
  readonly reason: string | null;
  readonly blocked_by: string | null;
  readonly blocked_ts: number;
}

interface AuditEntry {
  readonly id: number;
  readonly action: string;
  readonly actor: string;
  readonly target: string;
  readonly reason: string | null;
  readonly ts: number;
}

const SHA256_RE = /^[0-9a-fA-F]{64}$/;

function explain(error: unknown): string {
  if (error instanceof ApiError && error.errcode === 'M_UNRECOGNIZED') return 'This server has no blocked-hash API.';
  return error instanceof ApiError ? `${error.errcode}: ${error.message}` : (error as Error).message;
}

/** A download link for text the console fetched (an export): an object URL of plain data, never opened in the page. */
async function exportLink(format: 'json' | 'csv', holder: HTMLElement): Promise<void> {
  try {
    let blob: Blob;
    if (format === 'csv') {
      // Without a limit the server streams the whole list.
      const response = await request(`${ADMIN}/blocked_hashes?format=csv`);
      blob = new Blob([await response.arrayBuffer()], { type: 'text/csv' });
    } else {
      // JSON comes in pages (at most 1000 each): follow next_batch and save the export shape.
      const hashes: BlockedHashEntry[] = [];
      let from: string | undefined;
      do {
        const page: { hashes: BlockedHashEntry[]; next_batch?: string } = await requestJson(`${ADMIN}/blocked_hashes?limit=1000${from === undefined ? '' : `&from=${from}`}`);
        hashes.push(...page.hashes);
        from = page.next_batch;
      } while (from !== undefined);
      blob = new Blob([JSON.stringify({ hashes }, null, 1)], { type: 'application/json' });
    }
    const link = h('a', { href: URL.createObjectURL(blob), download: `blocked-hashes.${format}`, id: `export-${format}-file` }, `Save blocked-hashes.${format}`);
    replace(holder, link);
    link.focus();
  } catch (error) {
    replace(holder, h('span', { class: 'problem' }, explain(error)));
  }
}

async function renderHashes(section: HTMLElement, q: string): Promise<void> {
  const list = h('tbody', {});
  const problem = h('p', { class: 'problem', role: 'alert' });
  const table = h('div', { class: 'table-wrap' }, h('table', { id: 'hash-table' },
    h('caption', {}, 'Blocked hashes: uploads and remote media with these bytes are refused'),
    h('thead', {}, h('tr', {}, ...['SHA-256', 'Reason', 'Blocked by', 'When', ''].map((t) => h('th', { scope: 'col' }, t)))),
    list));
  const search = h('input', { id: 'hash-q', name: 'q', type: 'search', value: q, placeholder: 'hash prefix or reason' });
  const searchForm = h('form', { class: 'inline', role: 'search' }, h('label', { for: 'hash-q' }, 'Search'), search, h('button', { type: 'submit' }, 'Search'));
  searchForm.addEventListener('submit', (event) => {
    event.preventDefault();
    void renderHashes(section, search.value.trim());
  });
  const exportHolder = h('span', { id: 'export-holder' });
  const exportJson = h('button', { type: 'button', id: 'export-json' }, 'Export JSON');
  const exportCsv = h('button', { type: 'button', id: 'export-csv' }, 'Export CSV');
  exportJson.addEventListener('click', () => void exportLink('json', exportHolder));
  exportCsv.addEventListener('click', () => void exportLink('csv', exportHolder));

  const importText = h('textarea', { id: 'import-text', name: 'import', rows: 4, 'aria-describedby': 'import-help' });
  const importFile = h('input', { id: 'import-file', type: 'file', accept: '.csv,.json,.txt,text/csv,application/json,text/plain' });
  const importResult = h('p', { id: 'import-result', role: 'status' });
  const importForm = h('form', { id: 'import-form', 'aria-labelledby': 'import-title' },
    h('h3', { id: 'import-title' }, 'Import'),
    h('label', { for: 'import-text' }, 'Hashes: CSV (sha256[,reason[,blocked_by[,blocked_ts]]] per line, header optional) or JSON ({"hashes": [...]}, as exported)'),
    importText,
    h('p', { id: 'import-help', class: 'help' }, 'Or choose a file:'),
    h('label', { for: 'import-file' }, 'File'),
    importFile,
    h('button', { type: 'submit' }, 'Import'),
    importResult);
  importFile.addEventListener('change', () => {
    const file = importFile.files?.[0];
    if (file !== undefined) void file.text().then((text) => (importText.value = text));
  });
  importForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = importText.value.trim();
    if (text === '') return;
    const isJson = text.startsWith('[') || text.startsWith('{');
    let body: { json: unknown } | { text: string; contentType: string };
    if (isJson) {
      try {
        const parsed: unknown = JSON.parse(text);
        body = { json: Array.isArray(parsed) ? { hashes: parsed } : parsed };
      } catch {
        importResult.textContent = 'That is not valid JSON.';
        return;
      }
    } else {
      body = { text, contentType: 'text/csv' };
    }
    void request(`${ADMIN}/blocked_hashes/import`, { method: 'POST', ...body })
      .then((response) => response.json() as Promise<{ imported: number; already_present: number }>)
      .then((answer) => {
        importResult.textContent = `Imported ${answer.imported}, already present ${answer.already_present}.`;
        announce(importResult.textContent);
        return renderHashes(section, q).then(() => {
          section.querySelector<HTMLElement>('#import-result')!.textContent = `Imported ${answer.imported}, already present ${answer.already_present}.`;
        });
      })
      .catch((error: unknown) => (importResult.textContent = `Import failed: ${explain(error)}`));
  });

  const addHash = h('input', { id: 'add-hash', name: 'sha256', pattern: '[0-9a-fA-F]{64}', size: 64, placeholder: '64 hex digits' });
  const addForm = h('form', { class: 'inline' }, h('label', { for: 'add-hash' }, 'Block a hash'), addHash, h('button', { type: 'submit' }, 'Block'));
  addForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const hash = addHash.value.trim().toLowerCase();
    if (!SHA256_RE.test(hash)) {
      problem.textContent = 'A SHA-256 is 64 hex digits.';
      return;
    }
    void askReason('Block hash', hash).then(async (reason) => {
      if (reason === null) return;
      try {
        await request(`${ADMIN}/blocked_hashes/${hash}`, { method: 'PUT', json: { reason } });
        await renderHashes(section, q);
      } catch (error) {
        problem.textContent = `Could not block: ${explain(error)}`;
      }
    });
  });

  replace(section, h('h2', {}, 'Blocked hashes'), searchForm, h('div', { class: 'actions' }, exportJson, exportCsv, exportHolder), addForm, problem, table, importForm);
  try {
    const answer = await requestJson<{ hashes: BlockedHashEntry[] }>(`${ADMIN}/blocked_hashes?limit=200${q === '' ? '' : `&q=${encodeURIComponent(q)}`}`);
    for (const entry of answer.hashes) {
      const remove = h('button', { type: 'button', 'aria-label': `Unblock ${entry.sha256}` }, 'Unblock');
      remove.addEventListener('click', () => {
        void askReason('Unblock hash', entry.sha256).then(async (reason) => {
          if (reason === null) return;
          try {
            await request(`${ADMIN}/blocked_hashes/${seg(entry.sha256)}`, { method: 'DELETE', json: { reason } });
            await renderHashes(section, q);
          } catch (error) {
            problem.textContent = `Could not unblock: ${explain(error)}`;
          }
        });
      });
      list.append(h('tr', {}, h('td', {}, h('code', { class: 'hash' }, entry.sha256)), h('td', {}, entry.reason ?? '—'), h('td', {}, entry.blocked_by ?? '—'), h('td', {}, formatTime(entry.blocked_ts)), h('td', {}, remove)));
    }
    if (answer.hashes.length === 0) list.append(h('tr', {}, h('td', { colspan: 5 }, 'No blocked hashes match.')));
  } catch (error) {
    list.append(h('tr', {}, h('td', { colspan: 5 }, explain(error))));
  }
}

async function renderAudit(section: HTMLElement): Promise<void> {
  const body = h('tbody', { id: 'audit-rows' });
  const more = h('button', { type: 'button', hidden: true }, 'Older entries');
  replace(section, h('h2', {}, 'Audit trail'), h('div', { class: 'table-wrap' }, h('table', { id: 'audit-table' },
    h('caption', {}, 'Admin actions, newest first'),
    h('thead', {}, h('tr', {}, ...['When', 'Action', 'Target', 'By', 'Reason'].map((t) => h('th', { scope: 'col' }, t)))),
    body)), more);
  const load = async (from?: number): Promise<void> => {
    const answer = await requestJson<{ actions: AuditEntry[]; next_token?: number }>(`${ADMIN}/audit?limit=50${from === undefined ? '' : `&from=${from}`}`);
    for (const entry of answer.actions) {
      body.append(h('tr', {}, h('td', {}, formatTime(entry.ts)), h('td', {}, entry.action), h('td', {}, h('code', {}, entry.target)), h('td', {}, entry.actor), h('td', {}, entry.reason ?? '—')));
    }
    more.hidden = answer.next_token === undefined;
    more.onclick = answer.next_token === undefined ? null : () => void load(answer.next_token);
  };
  await load();
}

/** Trust and safety: the blocked-hash list (search, import, export), scan verdicts, and the audit trail. */
export async function renderSafety(view: HTMLElement): Promise<void> {
  const hashes = h('section', { id: 'hashes', 'aria-label': 'Blocked hashes' });
  const scans = h('section', { id: 'scans', 'aria-label': 'Scan verdicts' },
    h('h2', {}, 'Scan verdicts'),
    h('p', {}, 'When the server scans uploads, each media card and detail shows its verdict (pending, clean, infected, failed). ',
      h('a', { href: '#/media?quarantined=true' }, 'Quarantined media')));
  const audit = h('section', { id: 'audit', 'aria-label': 'Audit trail' });
  replace(view, h('h1', { tabindex: -1 }, 'Safety'), hashes, scans, audit);
  await Promise.all([renderHashes(hashes, ''), renderAudit(audit)]);
}
