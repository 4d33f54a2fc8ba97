/**
 * Requests to the server this page came from, with the admin token as a
 * Bearer header. The token lives in sessionStorage: gone when the tab closes.
 */
const TOKEN_KEY = 'hsmedia.console.token';

export function storedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function storeToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** A Matrix error answer (`errcode`, `error`) or a transport failure. */
export class ApiError extends Error {
  readonly status: number;
  readonly errcode: string;
  constructor(status: number, errcode: string, message: string) {
    super(message);
    this.status = status;
    this.errcode = errcode;
  }
}

/** Called when the token stops working (401), so the console can ask for another. */
let onUnauthorized: () => void = () => undefined;
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

export interface RequestOptions {
  readonly method?: string;
  readonly json?: unknown;
  readonly text?: string;
  readonly contentType?: string;
  readonly token?: string;
}

/** Sends a request to a path of this server and gives the raw response, after turning errors into {@link ApiError}. */
export async function request(path: string, options: RequestOptions = {}): Promise<Response> {
  const token = options.token ?? storedToken();
  const headers: Record<string, string> = {};
  if (token !== null) headers['Authorization'] = `Bearer ${token}`;
  let body: string | undefined;
  if (options.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(options.json);
  } else if (options.text !== undefined) {
    headers['Content-Type'] = options.contentType ?? 'text/plain';
    body = options.text;
  }
  // Only paths: every request goes to the server that served the console.
  if (!path.startsWith('/')) throw new Error('request paths are absolute paths of this server');
  let response: Response;
  try {
    response = await fetch(path, { method: options.method ?? 'GET', headers, body: body ?? null, credentials: 'omit', cache: 'no-store', redirect: 'error' });
  } catch (error) {
    throw new ApiError(0, 'M_CONNECTION', `The server did not answer (${(error as Error).message})`);
  }
  if (!response.ok) {
    let errcode = 'M_UNKNOWN';
    let message = `HTTP ${response.status}`;
    try {
      const answer = (await response.json()) as { errcode?: unknown; error?: unknown };
      if (typeof answer.errcode === 'string') errcode = answer.errcode;
      if (typeof answer.error === 'string') message = answer.error;
    } catch {
      // Not JSON: keep the status.
    }
    if (response.status === 401 && options.token === undefined) onUnauthorized();
    throw new ApiError(response.status, errcode, message);
  }
  return response;
}

/** {@link request}, answering with the parsed JSON. */
export async function requestJson<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const response = await request(path, options);
  return (await response.json()) as T;
}

/** Encodes one path segment. */
export const seg = encodeURIComponent;

export const ADMIN = '/_hsmedia/admin/v1';
export const SYNAPSE_ADMIN = '/_synapse/admin/v1';

/** A media item as `GET /_hsmedia/admin/v1/media` lists it. */
export interface MediaItem {
  readonly server_name: string;
  readonly media_id: string;
  readonly local: boolean;
  readonly user_id: string | null;
  readonly media_type: string | null;
  readonly media_length: number | null;
  readonly upload_name: string | null;
  readonly sha256: string | null;
  readonly created_ts: number;
  readonly uploaded_ts: number | null;
  readonly last_access_ts: number | null;
  readonly pending: boolean;
  readonly authenticated: boolean;
  readonly quarantined: boolean;
  readonly safe_from_quarantine: boolean;
  readonly scan_state?: string;
}
