// HTTP to the workspace API (/ui/api) and the config API (/api/v1), with errors in plain words.

export class ApiError extends Error {
  constructor(message, status = 0, body = null) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** sessionStorage key of the token the person signed in with (console and, off loopback, the workspace). */
export const TOKEN_KEY = 'incidentfox.console.token';

let pageToken = null;

/** The admin token sent with every /ui/api call when the page is not signed in by itself. */
export function setPageToken(token) {
  pageToken = token || null;
}

export function getPageToken() {
  return pageToken;
}

/** The event stream URL; EventSource cannot send headers, so the token goes in the query. */
export function eventsUrl() {
  return pageToken ? `/ui/api/events?token=${encodeURIComponent(pageToken)}` : '/ui/api/events';
}

/** Where this page serves a file: always its own origin, whatever the message says. */
function filePath(file) {
  return typeof file.url === 'string' && file.url.startsWith('/ui/api/files/')
    ? file.url
    : `/ui/api/files/${encodeURIComponent(file.id || '')}`;
}

/** A file's download link; a link cannot send headers, so the token goes in the query. */
export function fileUrl(file) {
  const path = filePath(file);
  return pageToken ? `${path}?token=${encodeURIComponent(pageToken)}` : path;
}

const UNREACHABLE = 'Could not reach IncidentFox. Check that it is still running, then try again.';

async function readBody(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.slice(0, 300) };
  }
}

function plainMessage(body, status) {
  const said = body && (body.message || (typeof body.error === 'string' ? body.error : null));
  if (said) return said;
  if (status === 401) return 'You are not signed in, or your token is no longer valid.';
  if (status === 403) return 'You are not allowed to do that.';
  if (status === 404) return 'That was not found. It may have been deleted.';
  if (status === 413) return 'That is too large to send (the limit is 1 MiB).';
  if (status >= 500) return 'IncidentFox hit an internal problem. Check its logs, then try again.';
  return `The request failed (HTTP ${status}).`;
}

/** Call the workspace API; resolves to the JSON body, rejects with an ApiError in plain words. */
export async function uiApi(method, path, body) {
  let response;
  try {
    response = await fetch(`/ui/api${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...(pageToken ? { Authorization: `Bearer ${pageToken}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
    });
  } catch {
    throw new ApiError(UNREACHABLE);
  }
  const data = await readBody(response);
  if (!response.ok || (data && data.ok === false)) {
    throw new ApiError(plainMessage(data, response.status), response.status, data);
  }
  return data || {};
}

/** A text file's content, for its preview; rejects with an ApiError in plain words. */
export async function fileText(file) {
  let response;
  try {
    response = await fetch(filePath(file), {
      headers: pageToken ? { Authorization: `Bearer ${pageToken}` } : {},
      credentials: 'same-origin',
    });
  } catch {
    throw new ApiError(UNREACHABLE);
  }
  if (!response.ok) {
    const data = await readBody(response);
    throw new ApiError(plainMessage(data, response.status), response.status, data);
  }
  return response.text();
}

/** A client for the config API with a bearer token; `raw` sends a string or Blob as-is (with `headers`). */
export function configApi(getToken) {
  return async function call(method, path, { body, raw, headers = {}, query } = {}) {
    const url = new URL(`/api/v1${path}`, window.location.origin);
    for (const [key, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== '') url.searchParams.set(key, value);
    }
    const token = getToken();
    const allHeaders = { ...headers };
    if (token) allHeaders.Authorization = `Bearer ${token}`;
    if (body !== undefined) allHeaders['Content-Type'] = 'application/json';
    let response;
    try {
      const payload = raw !== undefined ? raw : body === undefined ? undefined : JSON.stringify(body);
      response = await fetch(url, { method, headers: allHeaders, body: payload });
    } catch {
      throw new ApiError(UNREACHABLE);
    }
    const data = await readBody(response);
    if (!response.ok) {
      let message = plainMessage(data, response.status);
      if (response.status === 401) message = `Your token was not accepted: ${message.replace(/\.$/, '')}. Sign in again with a valid token.`;
      else if (response.status === 403) message = `This token is not allowed to do that: ${message}`;
      throw new ApiError(message, response.status, data);
    }
    return { data: data || {}, headers: response.headers };
  };
}
