// The console's entry point: hash routing between the four views, readiness and the token button.

import { askForToken, forgetToken, hasToken, request } from './api.js';
import * as evaluations from './evaluations.js';
import * as models from './models.js';
import * as server from './server.js';
import * as tryit from './tryit.js';

const VIEWS = { models, try: tryit, evaluations, server };
let current = null;

function route(moveFocus) {
  const [name, ...params] = window.location.hash.replace(/^#/, '').split('/');
  const key = name in VIEWS ? name : 'models';
  current?.unmount?.();
  for (const link of document.querySelectorAll('.tabs a')) {
    if (link.dataset.view === key) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const main = document.getElementById('main');
  main.replaceChildren();
  current = VIEWS[key];
  current.mount(main, params.map(decodeURIComponent));
  document.title = `${current.title} · Model serving console`;
  if (moveFocus) main.querySelector('h1')?.focus();
}

async function checkReadiness() {
  const badge = document.getElementById('readiness');
  try {
    const response = await request('v2/health/ready');
    const doc = await response.json().catch(() => ({}));
    const ready = response.ok && doc.ready;
    badge.textContent = ready ? 'Ready' : 'Not ready';
    badge.className = `badge ${ready ? 'badge-ok' : 'badge-bad'}`;
    badge.title = ready ? 'Every model has a version available.' : doc.error || `HTTP ${response.status}`;
  } catch {
    badge.textContent = 'Unreachable';
    badge.className = 'badge badge-bad';
    badge.title = 'The service did not answer.';
  }
}

function showTokenButton() {
  const button = document.getElementById('token-button');
  button.hidden = false;
  button.textContent = hasToken() ? 'Forget token' : 'Enter token';
}

function setUp() {
  const button = document.getElementById('token-button');
  button.addEventListener('click', async () => {
    if (hasToken()) {
      forgetToken();
    } else if (await askForToken()) {
      route(false); // reload the view with the new token
    }
  });
  // The button only appears once the service has asked for a token (or one is already kept).
  window.addEventListener('token-change', showTokenButton);
  if (hasToken()) showTokenButton();
  window.addEventListener('hashchange', () => route(true));
  route(false);
  checkReadiness();
  setInterval(checkReadiness, 10000);
}

setUp();
