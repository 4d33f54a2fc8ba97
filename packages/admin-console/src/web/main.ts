import './style.css';
import { ADMIN, ApiError, forgetToken, request, setUnauthorizedHandler, storedToken, storeToken } from './api.js';
import { announce, h, replace } from './dom.js';
import { revokeThumbnails } from './thumbnails.js';
import { renderMediaDetail } from './views/media-detail.js';
import { renderMedia } from './views/media.js';
import { renderSafety } from './views/safety.js';
import { renderStorage } from './views/storage.js';
import { renderUsers } from './views/users.js';

/**
 * The console's shell: sign-in, the section links, and hash routing
 * (`#/media`, `#/media/{server}/{id}`, `#/users`, `#/storage`, `#/safety`),
 * so the server serves one page and no path of the console reaches it.
 */
const main = document.getElementById('main') as HTMLElement;
const nav = document.getElementById('nav') as HTMLElement;

function signOut(message?: string): void {
  forgetToken();
  nav.hidden = true;
  showSignIn(message);
}

function showSignIn(message?: string): void {
  revokeThumbnails();
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false', 'aria-describedby': 'token-help' });
  const problem = h('p', { id: 'sign-in-problem', class: 'problem', role: 'alert' }, message ?? '');
  const form = h(
    'form',
    { id: 'sign-in', 'aria-labelledby': 'sign-in-title' },
    h('h1', { id: 'sign-in-title', tabindex: -1 }, 'Sign in'),
    h('label', { for: 'token' }, 'Admin access token'),
    input,
    h('p', { id: 'token-help', class: 'help' }, 'The token of a server admin. It is kept in this tab only (session storage) and sent to this server alone.'),
    h('button', { type: 'submit' }, 'Sign in'),
    problem,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const token = input.value.trim();
    problem.textContent = '';
    void checkToken(token).then((refusal) => {
      if (refusal !== null) {
        problem.textContent = refusal;
        input.focus();
        return;
      }
      storeToken(token);
      nav.hidden = false;
      if (location.hash === '' || location.hash === '#/') location.hash = '#/media';
      else void route();
    });
  });
  replace(main, form);
  input.focus();
}

/** Null when the token is an admin's; otherwise what to tell the person. */
async function checkToken(token: string): Promise<string | null> {
  if (token === '') return 'Enter a token.';
  try {
    await request(`${ADMIN}/audit?limit=1`, { token });
    return null;
  } catch (error) {
    if (error instanceof ApiError && error.status === 403) return 'Refused: this token belongs to a user who is not a server admin. The console is for server admins only.';
    if (error instanceof ApiError && error.status === 401) return 'Refused: the server does not know this token.';
    return `Could not check the token: ${(error as Error).message}`;
  }
}

async function route(): Promise<void> {
  if (storedToken() === null) {
    showSignIn();
    return;
  }
  nav.hidden = false;
  revokeThumbnails();
  const hash = location.hash.startsWith('#/') ? location.hash : '#/media';
  const [path, queryString] = hash.replace(/^#/, '').split('?', 2) as [string, string | undefined];
  const parts = path.split('/').filter((part) => part !== '').map((part) => decodeURIComponent(part));
  const params = new URLSearchParams(queryString ?? '');
  for (const link of nav.querySelectorAll('a')) {
    const current = link.getAttribute('href') === `#/${parts[0] ?? 'media'}`;
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const view = h('div', { class: 'view' });
  replace(main, view);
  try {
    switch (parts[0] ?? 'media') {
      case 'media':
        if (parts.length === 3) await renderMediaDetail(view, parts[1]!, parts[2]!);
        else await renderMedia(view, params);
        break;
      case 'users':
        await renderUsers(view, params);
        break;
      case 'storage':
        await renderStorage(view);
        break;
      case 'safety':
        await renderSafety(view);
        break;
      default:
        replace(view, h('h1', { tabindex: -1 }, 'Not found'), h('p', {}, 'No such section.'));
    }
  } catch (error) {
    if (storedToken() === null) return;
    view.append(h('p', { class: 'problem', role: 'alert' }, `Could not load: ${(error as Error).message}`));
  }
  // Move focus to the new heading so keyboard and screen-reader users land on the new content.
  (view.querySelector('h1') as HTMLElement | null)?.focus();
}

setUnauthorizedHandler(() => signOut('The token stopped working (401). Sign in again.'));
document.getElementById('sign-out')?.addEventListener('click', () => {
  signOut('Signed out.');
  announce('Signed out');
});
// Only `#/...` is a route: other fragments (the skip link's `#main`) move focus and change nothing.
window.addEventListener('hashchange', () => {
  if (location.hash === '' || location.hash.startsWith('#/')) void route();
});
void route();
