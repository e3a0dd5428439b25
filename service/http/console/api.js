// Every call to the service goes through here: URLs relative to where the console is served, the
// session's bearer token on each request, and one token prompt when the service answers 401.

const ROOT = new URL('../', import.meta.url); // this module lives at <root>/console/api.js
const TOKEN_KEY = 'model-serving.token';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function url(path) {
  return new URL(path, ROOT).href;
}

export function hasToken() {
  return Boolean(sessionStorage.getItem(TOKEN_KEY));
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  window.dispatchEvent(new Event('token-change'));
}

function storeToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  window.dispatchEvent(new Event('token-change'));
}

// ---- the token prompt: one dialog, however many calls were refused at the same time -------------
let pendingPrompt = null;
let declined = false; // cancelled once: no more automatic prompts, the header's button remains

export function askForToken(reason = '', refused = false) {
  if (!pendingPrompt) {
    pendingPrompt = showDialog(reason, refused).finally(() => { pendingPrompt = null; });
  }
  return pendingPrompt;
}

function showDialog(reason, refused) {
  const dialog = document.getElementById('token-dialog');
  const input = document.getElementById('token-input');
  document.getElementById('token-reason').textContent = refused
    ? `The token was refused: ${reason}`
    : `The service asks for an access token${reason ? `: ${reason}` : '.'}`;
  input.value = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      const token = dialog.returnValue === 'ok' ? input.value.trim() : '';
      declined = !token;
      if (token) storeToken(token);
      else window.dispatchEvent(new Event('token-change'));
      resolve(token || null);
    }, { once: true });
    dialog.returnValue = '';
    dialog.showModal();
    input.focus();
  });
}

async function errorMessage(response) {
  try {
    const doc = await response.clone().json();
    if (doc && typeof doc.error === 'string') return doc.error;
  } catch { /* not JSON: fall back to the status line */ }
  return `${response.status} ${response.statusText}`.trim();
}

// Runs send(authHeaders) until the answer is not a 401 the user can fix by entering a token.
async function authorised(send) {
  for (let attempt = 0; ; attempt += 1) {
    const sent = sessionStorage.getItem(TOKEN_KEY);
    const response = await send(sent ? { Authorization: `Bearer ${sent}` } : {});
    if (response.status !== 401 || attempt >= 3) return response;
    const current = sessionStorage.getItem(TOKEN_KEY);
    if (current && current !== sent) continue; // another call was answered with a new token meanwhile
    if (sent) sessionStorage.removeItem(TOKEN_KEY);
    if (declined && !sent) return response;
    const token = await askForToken(await errorMessage(response), Boolean(sent));
    if (!token) return response;
  }
}

export function request(path, { method = 'GET', body, headers = {} } = {}) {
  return authorised((auth) => fetch(url(path), {
    method, body, headers: { ...headers, ...auth }, cache: 'no-store',
  }));
}

async function checked(response) {
  if (!response.ok) throw new ApiError(response.status, await errorMessage(response));
  return response;
}

export async function getJSON(path) {
  return (await checked(await request(path))).json();
}

export async function getText(path) {
  return (await checked(await request(path))).text();
}

export async function getBlob(path) {
  return (await checked(await request(path))).blob();
}

export async function postJSON(path, doc) {
  const response = await request(path, {
    method: 'POST', body: JSON.stringify(doc), headers: { 'Content-Type': 'application/json' },
  });
  return (await checked(response)).json();
}

// A POST with upload progress, which fetch() cannot report: onProgress(sentBytes, totalBytes).
export async function upload(path, blob, contentType, onProgress) {
  const response = await authorised((auth) => new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url(path));
    xhr.setRequestHeader('Content-Type', contentType);
    for (const [name, value] of Object.entries(auth)) xhr.setRequestHeader(name, value);
    xhr.responseType = 'text';
    xhr.upload.addEventListener('progress', (e) => onProgress(e.loaded, e.lengthComputable ? e.total : blob.size));
    xhr.upload.addEventListener('load', () => onProgress(blob.size, blob.size));
    xhr.addEventListener('load', () => resolve(new Response(xhr.response, {
      status: xhr.status, statusText: xhr.statusText,
      headers: { 'Content-Type': xhr.getResponseHeader('Content-Type') || 'text/plain' },
    })));
    xhr.addEventListener('error', () => reject(new ApiError(0, 'The service could not be reached.')));
    xhr.send(blob);
  }));
  return (await checked(response)).json();
}

// The model path of a version, or of the version the service picks when none is named.
export function modelPath(name, version) {
  const base = `v1/models/${encodeURIComponent(name)}`;
  return version ? `${base}/versions/${encodeURIComponent(version)}` : base;
}
