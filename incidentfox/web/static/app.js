// Entry point: bootstrap, the two top-level tabs, the workspace sign-in gate, and the event stream.

import { el, clear, avatar } from './ui.js';
import { eventsUrl, getPageToken, setPageToken, TOKEN_KEY, uiApi } from './api.js';
import { directory, loadDirectory } from './directory.js';
import { ModalStack } from './modal.js';
import { Workspace } from './workspace.js';
import { ConsoleApp } from './console.js';

const TAB_KEY = 'incidentfox.tab';

/** The bootstrap, with the stored token if there is one; a token /ui/api refuses is not sent again. */
async function fetchBootstrap() {
  const stored = sessionStorage.getItem(TOKEN_KEY);
  if (stored) setPageToken(stored);
  try {
    return await uiApi('GET', '/bootstrap');
  } catch (error) {
    if (error.status !== 401 || !getPageToken()) throw error;
    setPageToken(null); // e.g. an org admin token: fine for the console, not for the workspace
    return uiApi('GET', '/bootstrap');
  }
}

function hasWorkspace(boot) {
  return Array.isArray(boot.users) && Array.isArray(boot.channels) && Boolean(boot.me);
}

async function main() {
  const root = document.getElementById('app');
  let boot;
  try {
    boot = await fetchBootstrap();
  } catch (error) {
    clear(root);
    root.append(el('div', { class: 'fatal card' },
      el('h1', { text: 'IncidentFox could not start this page' }),
      el('p', { text: error.message }),
      el('button', { type: 'button', class: 'btn btn-primary', text: 'Try again', onclick: () => location.reload() })));
    return;
  }
  const consoleOnly = boot.mode === 'console';
  document.body.dataset.mode = consoleOnly ? 'console' : 'workspace';

  const panels = {
    workspace: consoleOnly ? null : el('div', { class: 'tab-panel panel-workspace', role: 'tabpanel' }),
    console: el('div', { class: 'tab-panel panel-console', role: 'tabpanel', hidden: true }),
  };
  const tabs = {};
  let consoleApp = null;
  const select = (name) => {
    if (!panels[name]) name = 'console';
    for (const [key, panel] of Object.entries(panels)) {
      if (!panel) continue;
      panel.hidden = key !== name;
      tabs[key].classList.toggle('active', key === name);
      tabs[key].setAttribute('aria-selected', String(key === name));
    }
    document.body.dataset.tab = name;
    sessionStorage.setItem(TAB_KEY, name);
    if (name === 'console') {
      if (!consoleApp) consoleApp = new ConsoleApp(panels.console, boot.console || {});
      consoleApp.show();
    }
  };
  if (!consoleOnly) tabs.workspace = el('button', { type: 'button', class: 'top-tab', role: 'tab', 'data-testid': 'workspace-tab-link', text: 'Workspace', onclick: () => select('workspace') });
  tabs.console = el('button', { type: 'button', class: 'top-tab', role: 'tab', 'data-testid': 'console-tab-link', text: 'Console', onclick: () => select('console') });

  const banner = el('div', { class: 'conn-banner', role: 'status', hidden: true }, el('span', { class: 'spinner', 'aria-hidden': 'true' }), ' Reconnecting…');
  const meSlot = el('div', { class: 'top-me' });
  clear(root);
  root.append(
    el('header', { class: 'topbar' },
      el('div', { class: 'brand' }, el('img', { src: '/ui/static/favicon.svg', alt: '', width: 22, height: 22 }), el('span', { text: 'IncidentFox' })),
      el('nav', { class: 'top-tabs', role: 'tablist' }, Object.values(tabs)),
      el('div', { class: 'top-spacer' }),
      meSlot),
    banner,
    el('div', { class: 'panels' }, Object.values(panels).filter(Boolean)));

  const startWorkspace = (full) => {
    loadDirectory(full);
    const me = directory.me;
    clear(meSlot);
    if (me) meSlot.append(avatar(me.id, me.name, { size: 24 }), el('span', { title: `You are ${me.name} in the local workspace`, text: me.name }));
    clear(panels.workspace);
    const workspace = new Workspace(panels.workspace, full, new ModalStack());
    connectEvents(workspace, banner);
  };
  if (!consoleOnly) {
    if (hasWorkspace(boot)) startWorkspace(boot);
    else workspaceGate(panels.workspace, (full) => { boot = { ...full, console: boot.console }; startWorkspace(full); });
  }
  select(consoleOnly ? 'console' : sessionStorage.getItem(TAB_KEY) || 'workspace');
}

/** Off loopback the workspace needs the admin token; ask once, keep it for this tab. */
function workspaceGate(panel, onReady) {
  const input = el('input', { type: 'password', class: 'input', id: 'workspace-token', autocomplete: 'off', spellcheck: false, placeholder: 'ADMIN_TOKEN', 'data-testid': 'workspace-token-input' });
  const message = el('div', { class: 'form-error', role: 'alert', 'data-testid': 'workspace-signin-error', hidden: true });
  const button = el('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'workspace-sign-in', text: 'Sign in' });
  const form = el('form', { class: 'card signin-card', onsubmit: async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    message.hidden = false;
    if (!token) { message.textContent = 'Paste the admin token first.'; return; }
    message.textContent = '';
    button.disabled = true;
    setPageToken(token);
    try {
      const full = await uiApi('GET', '/bootstrap');
      if (!hasWorkspace(full)) throw new Error('That token was not accepted for the workspace.');
      sessionStorage.setItem(TOKEN_KEY, token);
      onReady(full);
    } catch (error) {
      setPageToken(null);
      message.textContent = error.message;
      input.select();
    } finally {
      button.disabled = false;
    }
  } },
  el('img', { src: '/ui/static/favicon.svg', alt: '', width: 40, height: 40 }),
  el('h1', { text: 'Sign in to the local workspace' }),
  el('p', { class: 'muted', text: 'This IncidentFox is reachable from other machines, so the workspace asks for the admin token (ADMIN_TOKEN). It is kept only in this browser tab.' }),
  el('label', { class: 'field-label', for: 'workspace-token', text: 'Admin token' }), input, message, button);
  panel.append(el('div', { class: 'console-center' }, form));
}

/** Subscribe to /ui/api/events; EventSource reconnects itself, and we re-fetch after each reconnect. */
function connectEvents(workspace, banner) {
  let everOpen = false;
  let retry = 1000;
  const handlers = {
    message: (data) => workspace.onMessage(data),
    message_deleted: (data) => workspace.onDeleted(data),
    ephemeral: (data) => workspace.onEphemeral(data),
    view: (data) => workspace.onView(data),
    channel: (data) => workspace.onChannel(data),
  };
  const open = () => {
    const source = new EventSource(eventsUrl());
    source.addEventListener('open', () => {
      document.body.dataset.sse = 'open';
      banner.hidden = true;
      if (everOpen) workspace.resync();
      everOpen = true;
      retry = 1000;
    });
    source.addEventListener('error', () => {
      document.body.dataset.sse = 'closed';
      banner.hidden = false;
      if (source.readyState === EventSource.CLOSED) {
        // the browser gave up (the server answered with an error): try again ourselves
        setTimeout(open, retry);
        retry = Math.min(retry * 2, 15000);
      }
    });
    for (const [name, handle] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => {
        let data;
        try {
          data = JSON.parse(event.data);
        } catch {
          console.warn('ignoring a malformed event', name, event.data);
          return;
        }
        try {
          handle(data);
        } catch (error) {
          console.error('event handler failed', name, data, error);
        }
      });
    }
  };
  open();
}

main();
