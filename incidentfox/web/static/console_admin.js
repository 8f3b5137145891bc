// Console tabs for tokens (issue once, list, revoke) and the audit log.

import { el, clear, confirmDialog, copyText, isoShort, toast } from './ui.js';

function enc(value) {
  return encodeURIComponent(value);
}

/** The box that shows a new token exactly once, with a Copy button. */
export function OneTimeSecret(token) {
  const status = el('span', { class: 'muted small', role: 'status' });
  return el('div', { class: 'one-time', role: 'alert' },
    el('div', { class: 'one-time-head', text: '⚠️ This is the only time this token is shown. Copy it now and keep it somewhere safe.' }),
    el('div', { class: 'one-time-row' },
      el('code', { class: 'one-time-token', 'data-testid': 'issued-token', text: token }),
      el('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'copy-token', text: 'Copy', onclick: async () => {
        status.textContent = (await copyText(token)) ? 'Copied.' : 'Copy failed: select the token and copy it by hand.';
      } }),
      status));
}

const EXPIRIES = [['', 'Never expires'], [String(86400), '1 day'], [String(30 * 86400), '30 days'], [String(90 * 86400), '90 days'], [String(365 * 86400), '1 year']];

function tokenStatus(token) {
  if (token.revoked_at) return ['revoked', `revoked ${isoShort(token.revoked_at)}`];
  if (token.expires_at && new Date(token.expires_at) <= new Date()) return ['expired', `expired ${isoShort(token.expires_at)}`];
  return ['active', 'active'];
}

export class TokensTab {
  constructor(ctx) {
    this.ctx = ctx;
    this.isTeam = ctx.node.kind === 'team';
    this.label = el('input', { class: 'input', placeholder: this.isTeam ? 'e.g. CI deploy bot' : 'e.g. second org admin', 'aria-label': 'Token label', 'data-testid': 'token-label' });
    this.expiry = el('select', { class: 'input', 'aria-label': 'Expiry' }, EXPIRIES.map(([value, text]) => el('option', { value, text })));
    this.issueButton = el('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'issue-token', text: this.isTeam ? 'Issue team token' : 'Issue org admin token' });
    this.issued = el('div');
    this.error = el('div', { class: 'form-error', role: 'alert' });
    this.listNode = el('div');
    this.node = el('div', { class: 'tokens-tab' },
      el('section', { class: 'card' },
        el('div', { class: 'card-head' }, el('h3', { text: this.isTeam ? 'Issue a team token' : 'Issue an org admin token' })),
        el('p', { class: 'muted small', text: this.isTeam
          ? 'A team token can read this team’s config (and patch it where the org allows).'
          : 'An org admin token can administer everything in this org.' }),
        el('form', { class: 'inline-form', onsubmit: (event) => { event.preventDefault(); this.issue(); } },
          this.label, this.expiry, this.issueButton),
        this.error, this.issued),
      el('section', { class: 'card' }, el('div', { class: 'card-head' }, el('h3', { text: 'Tokens' })), this.listNode));
  }

  async load() {
    clear(this.listNode);
    let tokens;
    try {
      const { data } = await this.ctx.api('GET', `/orgs/${enc(this.ctx.org)}/tokens`);
      tokens = data.tokens || [];
    } catch (error) {
      this.listNode.append(el('div', { class: 'form-error', text: error.message }));
      return;
    }
    if (this.isTeam) tokens = tokens.filter((t) => t.team_node_id === this.ctx.node.node_id);
    if (!tokens.length) {
      this.listNode.append(el('p', { class: 'muted', text: 'No tokens yet.' }));
      return;
    }
    tokens.sort((a, b) => String(b.created_at || '').localeCompare(String(a.created_at || '')));
    const tbody = el('tbody');
    for (const token of tokens) {
      const [state, text] = tokenStatus(token);
      tbody.append(el('tr', { 'data-testid': 'token-row', 'data-token-id': token.token_id, 'data-status': state },
        el('td', {}, token.label || el('span', { class: 'muted', text: '(no label)' }), el('div', { class: 'muted small' }, el('code', { text: token.token_id }))),
        el('td', { text: token.kind === 'org_admin' ? 'org admin' : token.kind || '' }),
        this.isTeam ? null : el('td', { text: token.team_node_id || '—' }),
        el('td', { text: isoShort(token.created_at) }),
        el('td', { text: token.expires_at ? isoShort(token.expires_at) : 'never' }),
        el('td', {}, el('span', { class: `chip chip-${state}`, text })),
        el('td', {}, state === 'active'
          ? el('button', { type: 'button', class: 'btn btn-small btn-danger-outline', 'data-testid': 'revoke-token', text: 'Revoke', onclick: () => this.revoke(token) })
          : null)));
    }
    this.listNode.append(el('table', { class: 'table' },
      el('thead', {}, el('tr', {}, el('th', { text: 'Label' }), el('th', { text: 'Kind' }), this.isTeam ? null : el('th', { text: 'Team' }),
        el('th', { text: 'Created' }), el('th', { text: 'Expires' }), el('th', { text: 'Status' }), el('th', { text: '' }))),
      tbody));
  }

  async issue() {
    this.error.textContent = '';
    clear(this.issued);
    this.issueButton.disabled = true;
    const body = {};
    if (this.label.value.trim()) body.label = this.label.value.trim();
    if (this.expiry.value) body.expires_in_seconds = Number(this.expiry.value);
    const path = this.isTeam ? `/orgs/${enc(this.ctx.org)}/nodes/${enc(this.ctx.node.node_id)}/tokens` : `/orgs/${enc(this.ctx.org)}/tokens`;
    try {
      const { data } = await this.ctx.api('POST', path, { body });
      this.issued.append(OneTimeSecret(data.token));
      this.label.value = '';
      await this.load();
    } catch (error) {
      this.error.textContent = error.message;
    } finally {
      this.issueButton.disabled = false;
    }
  }

  async revoke(token) {
    const ok = await confirmDialog({
      title: 'Revoke this token?',
      body: el('p', { text: `Anything using “${token.label || token.token_id}” stops working at once. This cannot be undone.` }),
      confirmText: 'Revoke', danger: true,
    });
    if (!ok) return;
    const path = token.team_node_id
      ? `/orgs/${enc(this.ctx.org)}/nodes/${enc(token.team_node_id)}/tokens/${enc(token.token_id)}`
      : `/orgs/${enc(this.ctx.org)}/tokens/${enc(token.token_id)}`;
    try {
      await this.ctx.api('DELETE', path);
      toast('Token revoked.');
    } catch (error) {
      toast(`Could not revoke the token: ${error.message}`, { kind: 'error' });
    }
    await this.load();
  }
}

const AUDIT_ACTIONS = ['config.write', 'node.create', 'node.move', 'org.create', 'token.issue', 'token.revoke', 'auth.failure', 'auth.forbidden', 'unrouted'];
const PAGE = 50;

export class AuditTab {
  constructor(ctx) {
    this.ctx = ctx;
    this.lastId = null;
    const listId = `audit-actions-${Math.random().toString(36).slice(2, 7)}`;
    this.action = el('input', { class: 'input input-small', placeholder: 'action', 'aria-label': 'Action', list: listId, 'data-testid': 'audit-filter-action' });
    this.actor = el('input', { class: 'input input-small', placeholder: 'actor', 'aria-label': 'Actor', 'data-testid': 'audit-filter-actor' });
    this.nodeFilter = el('input', { class: 'input input-small', placeholder: 'node or token id', title: 'Matches the start of the event’s target: a node id, a token id, …', 'aria-label': 'Target', 'data-testid': 'audit-filter-node', value: ctx.node.kind === 'org' ? '' : ctx.node.node_id });
    this.tbody = el('tbody');
    this.more = el('button', { type: 'button', class: 'btn', 'data-testid': 'audit-more', text: 'Load more', hidden: true, onclick: () => this.fetch(false) });
    this.status = el('div', { class: 'muted small', role: 'status' });
    this.node = el('div', { class: 'audit-tab' }, el('section', { class: 'card' },
      el('div', { class: 'card-head' }, el('h3', { text: 'Audit log' })),
      el('form', { class: 'inline-form', onsubmit: (event) => { event.preventDefault(); this.fetch(true); } },
        this.action, el('datalist', { id: listId }, AUDIT_ACTIONS.map((a) => el('option', { value: a }))),
        this.actor, this.nodeFilter, el('button', { type: 'submit', class: 'btn btn-small btn-primary', text: 'Filter' })),
      el('table', { class: 'table audit-table' },
        el('thead', {}, el('tr', {}, el('th', { text: 'When' }), el('th', { text: 'Actor' }), el('th', { text: 'Action' }), el('th', { text: 'Target' }), el('th', { text: 'Detail' }))),
        this.tbody),
      this.status, el('div', { class: 'button-row' }, this.more)));
  }

  load() {
    return this.fetch(true);
  }

  async fetch(reset) {
    if (reset) {
      clear(this.tbody);
      this.lastId = null;
    }
    this.more.disabled = true;
    const query = { limit: PAGE, action: this.action.value.trim(), actor: this.actor.value.trim(), target: this.nodeFilter.value.trim(), before_id: this.lastId };
    let events;
    try {
      const { data } = await this.ctx.api('GET', `/orgs/${enc(this.ctx.org)}/audit`, { query });
      events = data.events || [];
    } catch (error) {
      this.status.textContent = error.message;
      this.status.className = 'form-error';
      return;
    } finally {
      this.more.disabled = false;
    }
    this.status.className = 'muted small';
    for (const event of events) this.tbody.append(auditRow(event));
    if (events.length) this.lastId = events[events.length - 1].id;
    this.more.hidden = events.length < PAGE;
    const total = this.tbody.children.length;
    this.status.textContent = total ? `${total} event${total === 1 ? '' : 's'} shown.` : 'No events match.';
  }
}

function auditRow(event) {
  const detail = event.detail && typeof event.detail === 'object' ? JSON.stringify(event.detail) : String(event.detail ?? '');
  return el('tr', { 'data-testid': 'audit-row', 'data-event-id': String(event.id ?? ''), 'data-action': event.action || '' },
    el('td', { class: 'nowrap', title: event.at || '', text: isoShort(event.at) }),
    el('td', {}, el('code', { text: event.actor || '' })),
    el('td', {}, el('span', { class: 'chip', text: event.action || '' })),
    el('td', { text: event.node_id || event.target || '—' }),
    el('td', { class: 'detail', title: detail }, el('code', { text: detail.length > 160 ? `${detail.slice(0, 160)}…` : detail })));
}
