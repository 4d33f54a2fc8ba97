import { ADMIN, ApiError, request, requestJson, seg, SYNAPSE_ADMIN, type MediaItem } from '../api.js';
import { announce, formatBytes, formatTime, h, replace, type Child } from '../dom.js';
import { askReason } from '../reason-dialog.js';
import { fetchThumbnail, mayHaveThumbnail } from '../thumbnails.js';

interface MediaDetail {
  readonly media: MediaItem;
  readonly thumbnails: { width: number; height: number; method: string; animated: boolean; media_type: string; media_length: number }[];
  readonly references: { server_name: string; media_id: string }[];
}

function row(term: string, value: Child): HTMLElement[] {
  return [h('dt', {}, term), h('dd', {}, value)];
}

/** The detail view of one media item: metadata, hash, same-bytes references, thumbnails, and the admin actions (each asks for a reason). */
export async function renderMediaDetail(view: HTMLElement, serverName: string, mediaId: string): Promise<void> {
  const detail = await requestJson<MediaDetail>(`${ADMIN}/media/${seg(serverName)}/${seg(mediaId)}`);
  const { media } = detail;
  const mxc = `mxc://${media.server_name}/${media.media_id}`;
  const preview = h('div', { class: 'preview', id: 'preview' });
  const actions = h('div', { class: 'actions', role: 'group', 'aria-label': 'Actions' });
  const result = h('p', { id: 'action-result', role: 'status' });

  const act = async (label: string, method: string, path: string): Promise<void> => {
    const reason = await askReason(label, mxc);
    if (reason === null) return;
    try {
      await request(path, { method, json: { reason } });
      announce(`${label}: done`);
      if (method === 'DELETE') {
        location.hash = '#/media';
        return;
      }
      await renderMediaDetail(view, serverName, mediaId);
      view.querySelector<HTMLElement>('#action-result')!.textContent = `${label}: done.`;
      view.querySelector<HTMLElement>('h1')?.focus();
    } catch (error) {
      result.textContent = `${label} failed: ${error instanceof ApiError ? `${error.errcode}: ${error.message}` : (error as Error).message}`;
    }
  };
  const button = (label: string, method: string, path: string, danger = false): HTMLButtonElement => {
    const element = h('button', { type: 'button', class: danger ? 'danger' : undefined }, label);
    element.addEventListener('click', () => void act(label, method, path));
    return element;
  };
  const target = `${seg(media.server_name)}/${seg(media.media_id)}`;
  actions.append(
    media.quarantined
      ? button('Unquarantine', 'POST', `${SYNAPSE_ADMIN}/media/unquarantine/${target}`)
      : button('Quarantine', 'POST', `${SYNAPSE_ADMIN}/media/quarantine/${target}`, true),
  );
  if (media.local) {
    actions.append(
      media.safe_from_quarantine
        ? button('Unprotect', 'POST', `${SYNAPSE_ADMIN}/media/unprotect/${seg(media.media_id)}`)
        : button('Protect', 'POST', `${SYNAPSE_ADMIN}/media/protect/${seg(media.media_id)}`),
      button('Delete', 'DELETE', `${SYNAPSE_ADMIN}/media/${target}`, true),
    );
  }

  const references = detail.references.length === 0
    ? 'none'
    : h('ul', {}, ...detail.references.map((ref) => h('li', {}, h('a', { href: `#/media/${seg(ref.server_name)}/${seg(ref.media_id)}` }, `mxc://${ref.server_name}/${ref.media_id}`))));
  const thumbnails = detail.thumbnails.length === 0
    ? 'none stored'
    : h('ul', {}, ...detail.thumbnails.map((t) => h('li', {}, `${t.width}×${t.height} ${t.method}${t.animated ? ' animated' : ''} ${t.media_type} ${formatBytes(t.media_length)}`)));

  replace(
    view,
    h('p', {}, h('a', { href: '#/media' }, '← All media')),
    h('h1', { tabindex: -1 }, media.upload_name ?? media.media_id),
    h('div', { class: 'detail' },
      preview,
      h('dl', { class: 'meta-list' },
        ...row('MXC URI', h('code', {}, mxc)),
        ...row('Origin', media.local ? `${media.server_name} (local)` : `${media.server_name} (remote)`),
        ...row('Uploader', media.user_id ?? '—'),
        ...row('Type', media.media_type ?? '—'),
        ...row('Size', `${formatBytes(media.media_length)}${media.media_length === null ? '' : ` (${media.media_length} bytes)`}`),
        ...row('SHA-256', h('code', { class: 'hash' }, media.sha256 ?? '—')),
        ...row('Created', formatTime(media.created_ts)),
        ...row('Last access', formatTime(media.last_access_ts)),
        ...row('Quarantined', media.quarantined ? 'yes' : 'no'),
        ...row('Protected', media.safe_from_quarantine ? 'yes' : 'no'),
        ...row('Authenticated only', media.authenticated ? 'yes' : 'no'),
        ...(media.scan_state === undefined ? [] : row('Scan', media.scan_state)),
        ...row('Same bytes', references),
        ...row('Stored thumbnails', thumbnails),
      ),
    ),
    actions,
    result,
  );

  // The original is never shown: only a server-made raster thumbnail, fetched with the token.
  if (media.pending || !mayHaveThumbnail(media.media_type)) {
    replace(preview, h('p', { class: 'help' }, 'No preview: the console shows thumbnails of images and videos only, never the original.'));
  } else {
    // In the background: the view (and its focused heading) is ready before the thumbnail is.
    replace(preview, h('p', { class: 'help' }, 'Loading thumbnail…'));
    void fetchThumbnail(media.server_name, media.media_id, 320, 240).then((thumbnail) =>
      replace(
        preview,
        'url' in thumbnail
          ? h('img', { src: thumbnail.url, alt: `Thumbnail of ${media.upload_name ?? media.media_id}`, id: 'preview-image' })
          : h('p', { class: 'problem', id: 'thumbnail-refused' }, `Thumbnail refused by the client API: ${thumbnail.refused}`),
      ),
    );
  }
}
