// The config console: sign-in, the org -> unit -> team tree, and per-node tabs over /api/v1.

import { el, clear, toast } from './ui.js';
import { configApi, TOKEN_KEY } from './api.js';
import { ConfigTab, RoutingTab } from './console_config.js';
import { TokensTab, AuditTab, OneTimeSecret } from './console_admin.js';
import { RunsTab } from './console_runs.js';
import { KnowledgeTab } from './console_knowledge.js';

const KIND_ICONS = { org: '🏢', unit: '📁', team: '👥' };
const TABS = [
  { id: 'config', label: 'Config', kinds: ['org', 'unit', 'team'], make: (ctx) => new ConfigTab(ctx) },
  { id: 'routing', label: 'Routing', kinds: ['team'], make: (ctx) => new RoutingTab(ctx) },
  { id: 'tokens', label: 'Tokens', kinds: ['org', 'team'], admin: true, make: (ctx) => new TokensTab(ctx) },
  { id: 'audit', label: 'Audit', kinds: ['org', 'unit', 'team'], admin: true, make: (ctx) => new AuditTab(ctx) },
  { id: 'runs', label: 'Runs', kinds: ['org', 'team'], make: (ctx) => new RunsTab(ctx) },
  { id: 'knowledge', label: 'Knowledge', kinds: ['team'], make: (ctx) => new KnowledgeTab(ctx) },
];

export function describeWho(who) {
  if (!who) return '';
  if (who.auth_kind === 'admin') return 'Global admin';
  if (who.auth_kind === 'org_admin') return `Org admin of ${who.org_id}`;
  if (who.auth_kind === 'team') return `Team ${who.org_id}/${who.team_node_id}`;
  return who.auth_kind || 'Signed in';
}

export class ConsoleApp {
  constructor(host, info) {
    this.host = host;
    this.info = info || {};
    this.auto = Boolean(this.info.token);
    this.token = this.info.token || sessionStorage.getItem(TOKEN_KEY) || null;
    this.api = configApi(() => this.token);
    this.started = false;
    this.who = null;
    this.orgs = []; // [{org_id, name, nodes: [...], error}]
    this.selected = null; // {org, node}
    this.tab = 'config';
  }

  show() {
    if (this.started) return;
    this.started = true;
    if (!this.token && this.info.requires_token !== false) this.signIn();
    else this.verify();
  }

  // ---------------------------------------------------------------- sign-in

  signIn(error = '') {
    clear(this.host);
    const input = el('input', { type: 'password', class: 'input', id: 'console-token', autocomplete: 'off', spellcheck: false, placeholder: 'Paste an admin, org admin or team token', 'data-testid': 'console-token-input' });
    const message = el('div', { class: 'form-error', role: 'alert', 'data-testid': 'signin-error', text: error, hidden: !error });
    const button = el('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'console-sign-in', text: 'Sign in' });
    const form = el('form', { class: 'card signin-card', onsubmit: async (event) => {
      event.preventDefault();
      const token = input.value.trim();
      message.hidden = false;
      if (!token) { message.textContent = 'Paste a token first.'; return; }
      message.textContent = '';
      button.disabled = true;
      this.token = token;
      this.auto = false;
      const problem = await this.verify({ fromForm: true });
      button.disabled = false;
      if (problem) {
        message.textContent = problem;
        input.select();
      }
    } },
    el('img', { src: '/ui/static/favicon.svg', alt: '', width: 40, height: 40 }),
    el('h1', { text: 'Sign in to the config console' }),
    el('p', { class: 'muted', text: 'Use the ADMIN_TOKEN of this installation, an org admin token, or a team token. It is kept only in this browser tab.' }),
    el('label', { class: 'field-label', for: 'console-token', text: 'Token' }), input, message, button);
    this.host.append(el('div', { class: 'console-center' }, form));
    input.focus();
  }

  /** Check the token with whoami; on success show the console. Returns null, or what went wrong. */
  async verify({ fromForm = false } = {}) {
    try {
      const { data } = await this.api('GET', '/auth/whoami');
      this.who = data;
    } catch (error) {
      if (!this.auto) sessionStorage.removeItem(TOKEN_KEY);
      if (fromForm) return error.message;
      if (error.status === 401 || error.status === 403) this.signIn(`Please sign in. ${error.message}`);
      else this.fatal(error.message);
      return error.message;
    }
    if (!this.auto) sessionStorage.setItem(TOKEN_KEY, this.token);
    this.renderShell();
    await this.loadTree();
    return null;
  }

  signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    this.token = null;
    this.who = null;
    this.selected = null;
    this.signIn();
  }

  fatal(message) {
    clear(this.host);
    this.host.append(el('div', { class: 'console-center' }, el('div', { class: 'card' },
      el('h2', { text: 'The console could not load' }), el('p', { text: message }),
      el('button', { type: 'button', class: 'btn', text: 'Try again', onclick: () => this.verify() }))));
  }

  // ---------------------------------------------------------------- layout

  renderShell() {
    clear(this.host);
    this.treeNode = el('div', { class: 'tree', role: 'tree' });
    this.panel = el('section', { class: 'console-panel' });
    const side = el('aside', { class: 'console-side' },
      el('div', { class: 'console-side-head' }, el('span', { text: 'Organizations' }),
        this.who.auth_kind === 'admin' ? el('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'new-org', text: '+ Org', onclick: () => this.newOrgForm() }) : null),
      this.treeNode);
    this.host.append(el('div', { class: 'console' },
      el('div', { class: 'console-bar' },
        el('span', { class: 'console-who', 'data-testid': 'console-who', 'data-auth-kind': this.who.auth_kind || '' }, '🔑 ', describeWho(this.who)),
        this.auto ? el('span', { class: 'muted', text: ' · signed in automatically on this machine' })
          : el('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'console-sign-out', text: 'Sign out', onclick: () => this.signOut() })),
      el('div', { class: 'console-body' }, side, this.panel)));
    this.panel.append(el('div', { class: 'console-empty muted', text: 'Loading the tree…' }));
  }

  async loadTree(selectId) {
    this.orgs = await this.listOrgs();
    for (const org of this.orgs) {
      try {
        if (this.who.auth_kind === 'team') {
          const { data } = await this.api('GET', `/orgs/${enc(org.org_id)}/nodes/${enc(this.who.team_node_id)}`);
          org.nodes = [data];
        } else {
          const { data } = await this.api('GET', `/orgs/${enc(org.org_id)}/nodes`);
          org.nodes = data.nodes || [];
        }
      } catch (error) {
        org.error = error.message;
        org.nodes = [];
      }
    }
    this.renderTree();
    const wanted = selectId || (this.selected && this.selected.node.node_id);
    const first = this.findNode(wanted) || this.firstNode();
    if (first) this.select(first.org, first.node);
    else {
      clear(this.panel);
      this.panel.append(el('div', { class: 'console-empty muted', text: this.who.auth_kind === 'admin' ? 'No orgs yet. Create one with “+ Org”.' : 'Nothing to show for this token.' }));
    }
  }

  async listOrgs() {
    if (this.who.auth_kind === 'team') return [{ org_id: this.who.org_id, name: this.who.org_id }];
    try {
      const { data } = await this.api('GET', '/orgs');
      return (data.orgs || []).map((org) => ({ org_id: org.org_id, name: org.name || org.org_id }));
    } catch (error) {
      if (this.who.org_id) return [{ org_id: this.who.org_id, name: this.who.org_id }];
      toast(`Could not list the orgs: ${error.message}`, { kind: 'error' });
      return [];
    }
  }

  findNode(nodeId) {
    if (!nodeId) return null;
    for (const org of this.orgs) {
      const node = org.nodes.find((n) => n.node_id === nodeId);
      if (node) return { org, node };
    }
    return null;
  }

  firstNode() {
    for (const org of this.orgs) if (org.nodes.length) return { org, node: org.nodes.find((n) => n.kind === 'org') || org.nodes[0] };
    return null;
  }

  renderTree() {
    clear(this.treeNode);
    for (const org of this.orgs) {
      if (org.error) {
        this.treeNode.append(el('div', { class: 'tree-error' }, el('b', { text: org.name }), el('div', { class: 'form-error', text: org.error })));
        continue;
      }
      const ids = new Set(org.nodes.map((n) => n.node_id));
      const roots = org.nodes.filter((n) => !n.parent_id || !ids.has(n.parent_id));
      this.treeNode.append(this.branch(org, roots, 0));
    }
  }

  branch(org, nodes, depth) {
    const list = el('ul', { class: depth ? 'tree-children' : 'tree-root', role: depth ? 'group' : null });
    const order = { org: 0, unit: 1, team: 2 };
    for (const node of [...nodes].sort((a, b) => (order[a.kind] - order[b.kind]) || (a.name || a.node_id).localeCompare(b.name || b.node_id))) {
      const selected = this.selected && this.selected.org === org && this.selected.node.node_id === node.node_id;
      const children = org.nodes.filter((n) => n.parent_id === node.node_id);
      list.append(el('li', { role: 'treeitem', 'aria-selected': String(Boolean(selected)) },
        el('button', {
          type: 'button', class: selected ? 'tree-node selected' : 'tree-node',
          'data-testid': 'tree-node', 'data-node-id': node.node_id, 'data-org-id': org.org_id, 'data-kind': node.kind,
          onclick: () => this.select(org, node),
        },
        el('span', { class: 'tree-icon', 'aria-hidden': 'true', text: KIND_ICONS[node.kind] || '•' }),
        el('span', { class: 'tree-name', text: node.name || node.node_id }),
        node.name && node.name !== node.node_id ? el('span', { class: 'tree-id', text: node.node_id }) : null),
        children.length ? this.branch(org, children, depth + 1) : null));
    }
    return list;
  }

  // ---------------------------------------------------------------- node panel

  nodeName(org, nodeId) {
    const node = org.nodes.find((n) => n.node_id === nodeId);
    return node ? `${node.name || nodeId} (${node.kind} ${nodeId})` : nodeId;
  }

  select(org, node, tab) {
    this.selected = { org, node };
    this.renderTree();
    const isAdmin = this.who.auth_kind !== 'team';
    const tabs = TABS.filter((t) => t.kinds.includes(node.kind) && (!t.admin || isAdmin));
    if (tab) this.tab = tab;
    if (!tabs.some((t) => t.id === this.tab)) this.tab = tabs[0].id;
    clear(this.panel);
    const path = Array.isArray(node.path) ? node.path : [node.node_id];
    const tabBar = el('div', { class: 'subtabs', role: 'tablist' });
    const body = el('div', { class: 'subtab-body' });
    const ctx = {
      api: this.api, who: this.who, org: org.org_id, orgInfo: org, node,
      nodeName: (id) => this.nodeName(org, id),
      reloadTree: (selectId) => this.loadTree(selectId),
    };
    const show = (id) => {
      this.tab = id;
      for (const button of tabBar.children) {
        const on = button.dataset.tab === id;
        button.classList.toggle('active', on);
        button.setAttribute('aria-selected', String(on));
      }
      clear(body);
      const def = tabs.find((t) => t.id === id);
      const view = def.make(ctx);
      body.append(view.node);
      view.load();
    };
    for (const t of tabs) {
      tabBar.append(el('button', { type: 'button', class: 'subtab', role: 'tab', 'data-testid': 'console-subtab', 'data-tab': t.id, text: t.label, onclick: () => show(t.id) }));
    }
    this.panel.append(
      el('div', { class: 'node-head' },
        el('div', { class: 'node-title' },
          el('span', { class: 'node-icon', text: KIND_ICONS[node.kind] || '•' }),
          el('h2', { text: node.name || node.node_id }),
          el('span', { class: 'kind-chip', text: node.kind })),
        el('div', { class: 'node-path muted', text: path.join(' › ') }),
        isAdmin && node.kind !== 'team' ? this.addChildForm(org, node) : null),
      tabBar, body);
    show(this.tab);
  }

  addChildForm(org, parent) {
    const kind = el('select', { class: 'input input-small', 'aria-label': 'Kind' }, el('option', { value: 'team', text: 'team' }), el('option', { value: 'unit', text: 'unit' }));
    const id = el('input', { class: 'input input-small', placeholder: 'id, e.g. checkout', 'aria-label': 'New node id', pattern: '[a-z0-9][a-z0-9-]{0,62}' });
    const name = el('input', { class: 'input input-small', placeholder: 'Name', 'aria-label': 'New node name' });
    const error = el('span', { class: 'form-error', role: 'alert' });
    const details = el('details', { class: 'add-child' }, el('summary', { text: '+ Add a unit or team here' }),
      el('form', { class: 'inline-form', onsubmit: async (event) => {
        event.preventDefault();
        error.textContent = '';
        try {
          const body = { node_id: id.value.trim(), parent_id: parent.node_id, kind: kind.value, name: name.value.trim() || undefined };
          await this.api('POST', `/orgs/${enc(org.org_id)}/nodes`, { body });
          toast(`Created ${kind.value} ${body.node_id}.`);
          await this.loadTree(body.node_id);
        } catch (failure) {
          error.textContent = failure.message;
        }
      } }, kind, id, name, el('button', { type: 'submit', class: 'btn btn-small btn-primary', text: 'Create' }), error));
    return details;
  }

  newOrgForm() {
    clear(this.panel);
    const id = el('input', { class: 'input', placeholder: 'acme', 'aria-label': 'Org id' });
    const name = el('input', { class: 'input', placeholder: 'Acme Inc.', 'aria-label': 'Org name' });
    const error = el('div', { class: 'form-error', role: 'alert' });
    const result = el('div');
    this.panel.append(el('div', { class: 'card' },
      el('h2', { text: 'Create an org' }),
      el('form', { class: 'stack-form', onsubmit: async (event) => {
        event.preventDefault();
        error.textContent = '';
        try {
          const { data } = await this.api('POST', '/orgs', { body: { org_id: id.value.trim(), name: name.value.trim() || undefined } });
          clear(result);
          result.append(el('p', { text: `Created org ${data.org_id}. Its first org admin token:` }), OneTimeSecret(data.admin_token));
          await this.listOrgsAndKeepPanel();
        } catch (failure) {
          error.textContent = failure.message;
        }
      } },
      el('label', { class: 'field-label', text: 'Org id (lowercase letters, digits and dashes)' }), id,
      el('label', { class: 'field-label', text: 'Name' }), name, error,
      el('button', { type: 'submit', class: 'btn btn-primary', text: 'Create org' })), result));
    id.focus();
  }

  async listOrgsAndKeepPanel() {
    const panelContent = [...this.panel.childNodes];
    await this.loadTree();
    clear(this.panel);
    this.panel.append(...panelContent);
  }
}

function enc(value) {
  return encodeURIComponent(value);
}
