// Console tabs for a node's own config (JSON editor), its effective config, and its routing claims.

import { el, clear, toast } from './ui.js';
import { channelName } from './directory.js';

function enc(value) {
  return encodeURIComponent(value);
}

/** Leaves of a JSON document as [dotted.path, value]; arrays and empty objects are leaves. */
export function flatten(value, prefix = '', out = []) {
  if (value && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length) {
    for (const [key, child] of Object.entries(value)) flatten(child, prefix ? `${prefix}.${key}` : key, out);
  } else if (prefix) {
    out.push([prefix, value]);
  }
  return out;
}

/** Where a leaf comes from: the exact key in sources, else its nearest listed ancestor. */
export function sourceOf(sources, path) {
  if (!sources) return undefined;
  let key = path;
  while (key) {
    if (key in sources) return sources[key];
    const dot = key.lastIndexOf('.');
    key = dot > 0 ? key.slice(0, dot) : '';
  }
  return undefined;
}

function describeJsonError(text, error) {
  const match = /position (\d+)/.exec(error.message);
  if (!match) return `This is not valid JSON: ${error.message}`;
  const position = Number(match[1]);
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - before.lastIndexOf('\n');
  return `This is not valid JSON (line ${line}, column ${column}): ${error.message.replace(/\s*(in JSON )?at position \d+.*$/, '')}`;
}

function formatValue(value) {
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

export class ConfigTab {
  constructor(ctx) {
    this.ctx = ctx;
    this.version = null;
    this.editor = el('textarea', { class: 'json-editor', spellcheck: false, rows: 16, 'aria-label': 'Own config (JSON)', 'data-testid': 'config-editor' });
    this.validation = el('div', { class: 'validation', 'data-testid': 'config-validation', role: 'status' });
    this.saveButton = el('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'config-save', text: 'Save', onclick: () => this.save() });
    this.result = el('div', { class: 'save-result', role: 'alert', 'data-testid': 'config-result' });
    this.effective = el('div', { class: 'effective' });
    this.editor.addEventListener('input', () => this.validate());
    this.editor.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) { event.preventDefault(); this.save(); }
      if (event.key === 'Tab' && !event.shiftKey) {
        event.preventDefault();
        this.editor.setRangeText('  ', this.editor.selectionStart, this.editor.selectionEnd, 'end');
      }
    });
    this.versionNode = el('span', { class: 'muted' });
    this.node = el('div', { class: 'config-tab' },
      el('section', { class: 'card' },
        el('div', { class: 'card-head' }, el('h3', { text: 'Own config' }), this.versionNode),
        el('p', { class: 'muted small', text: 'What this node sets itself; it is merged over what it inherits. A null value deletes an inherited key. Secrets show as ••••last4: leave them as they are to keep them.' }),
        this.editor, this.validation,
        el('div', { class: 'button-row' }, this.saveButton,
          el('button', { type: 'button', class: 'btn', text: 'Format', onclick: () => this.format() }),
          el('button', { type: 'button', class: 'btn', text: 'Revert', onclick: () => this.load() })),
        this.result),
      el('section', { class: 'card' },
        el('div', { class: 'card-head' }, el('h3', { text: 'Effective config' })),
        this.effective));
  }

  get base() {
    return `/orgs/${enc(this.ctx.org)}/nodes/${enc(this.ctx.node.node_id)}`;
  }

  async load() {
    this.result.textContent = '';
    this.result.className = 'save-result';
    try {
      const { data } = await this.ctx.api('GET', `${this.base}/config`);
      this.version = data.version ?? null;
      this.versionNode.textContent = this.version !== null ? `version ${this.version}` : '';
      this.editor.value = JSON.stringify(data.config || {}, null, 2);
      this.validate();
    } catch (error) {
      this.editor.value = '';
      this.showResult(error.message, false);
    }
    await this.loadEffective();
  }

  async loadEffective() {
    clear(this.effective);
    let data;
    try {
      ({ data } = await this.ctx.api('GET', `${this.base}/effective-config`));
    } catch (error) {
      this.effective.append(el('div', { class: 'form-error', text: error.message }));
      return;
    }
    const chain = Array.isArray(data.chain) ? data.chain : [];
    if (chain.length) {
      this.effective.append(el('p', { class: 'muted small', text: `Merged root first: ${chain.map((c) => (typeof c === 'string' ? c : c.node_id || JSON.stringify(c))).join(' › ')}` }));
    }
    const rows = flatten(data.config || {});
    if (!rows.length) {
      this.effective.append(el('p', { class: 'muted', text: 'Nothing is configured here or above.' }));
      return;
    }
    const here = this.ctx.node.node_id;
    const table = el('table', { class: 'table', 'data-testid': 'effective-config' },
      el('thead', {}, el('tr', {}, el('th', { text: 'Key' }), el('th', { text: 'Value' }), el('th', { text: 'Source' }))));
    const tbody = el('tbody');
    for (const [path, value] of rows) {
      const source = sourceOf(data.sources, path);
      const secret = typeof value === 'string' && value.startsWith('••••');
      let sourceCell;
      if (source === undefined) sourceCell = el('span', { class: 'muted', text: '—' });
      else if (source === here) sourceCell = el('span', { class: 'source-here', text: 'set here' });
      else sourceCell = el('span', { class: 'source-inherited', text: `inherited from ${this.ctx.nodeName(source)}` });
      tbody.append(el('tr', { 'data-key': path },
        el('td', {}, el('code', { text: path })),
        el('td', { class: secret ? 'value secret' : 'value' }, secret ? '🔒 ' : null, el('code', { text: formatValue(value) })),
        el('td', {}, sourceCell)));
    }
    table.append(tbody);
    this.effective.append(table);
  }

  parse() {
    const text = this.editor.value.trim() || '{}';
    let value;
    try {
      value = JSON.parse(text);
    } catch (error) {
      return { error: describeJsonError(text, error) };
    }
    if (!value || typeof value !== 'object' || Array.isArray(value)) return { error: 'The config must be a JSON object: { ... }.' };
    return { value };
  }

  validate() {
    const { error } = this.parse();
    this.validation.textContent = error || 'Valid JSON.';
    this.validation.className = error ? 'validation invalid' : 'validation valid';
    this.saveButton.disabled = Boolean(error);
    return !error;
  }

  format() {
    const { value } = this.parse();
    if (value) this.editor.value = JSON.stringify(value, null, 2);
  }

  showResult(message, ok) {
    this.result.textContent = message;
    this.result.className = ok ? 'save-result ok' : 'save-result form-error';
  }

  async save() {
    const { value, error } = this.parse();
    if (error) { this.validate(); return; }
    this.saveButton.disabled = true;
    try {
      const headers = this.version !== null ? { 'If-Match': `"${this.version}"` } : {};
      const { data } = await this.ctx.api('PUT', `${this.base}/config`, { body: value, headers });
      this.version = data.version ?? this.version;
      this.versionNode.textContent = this.version !== null ? `version ${this.version}` : '';
      if (data.config) this.editor.value = JSON.stringify(data.config, null, 2);
      this.showResult(`Saved${data.version !== undefined ? ` as version ${data.version}` : ''}.`, true);
      await this.loadEffective();
    } catch (failure) {
      const message = failure.status === 412
        ? `Someone changed this config since you loaded it. ${failure.message} Press Revert to load the current version.`
        : failure.message;
      this.showResult(message, false);
    } finally {
      this.saveButton.disabled = false;
      this.validate();
    }
  }
}

const CLAIMS = [
  { key: 'slack_channel_ids', label: 'Slack channel IDs', placeholder: 'C0CHECKOUT', hint: 'Mentions and commands in these channels are answered for this team.' },
  { key: 'github_repos', label: 'GitHub repos', placeholder: 'acme/checkout', hint: 'owner/name; CI failures and PR events from these repos route here.' },
  { key: 'pagerduty_service_ids', label: 'PagerDuty service IDs', placeholder: 'PCHK001', hint: 'Incidents on these services route here.' },
];

export class RoutingTab {
  constructor(ctx) {
    this.ctx = ctx;
    this.version = null;
    this.fields = {};
    this.result = el('div', { class: 'save-result', role: 'alert', 'data-testid': 'routing-result' });
    this.saveButton = el('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'routing-save', text: 'Save routing', onclick: () => this.save() });
    const rows = CLAIMS.map((claim) => {
      const area = el('textarea', { class: 'input claims', rows: 3, id: `routing-${claim.key}`, placeholder: claim.placeholder, 'data-testid': `routing-${claim.key}`, spellcheck: false });
      const names = el('div', { class: 'muted small' });
      if (claim.key === 'slack_channel_ids') area.addEventListener('input', () => this.showChannelNames(area, names));
      this.fields[claim.key] = { area, names };
      return el('div', { class: 'claim-row' },
        el('label', { class: 'field-label', for: `routing-${claim.key}`, text: claim.label }),
        area, el('div', { class: 'muted small', text: `${claim.hint} One per line.` }), names);
    });
    this.node = el('div', { class: 'routing-tab' }, el('section', { class: 'card' },
      el('div', { class: 'card-head' }, el('h3', { text: 'Routing claims' })),
      el('p', { class: 'muted small', text: 'Each identifier can be claimed by one team only. Saving replaces these three lists in this team’s own config.' }),
      rows, el('div', { class: 'button-row' }, this.saveButton), this.result));
  }

  showChannelNames(area, names) {
    const known = this.values(area).map((id) => channelName(id)).filter(Boolean);
    names.textContent = known.length ? `In this workspace: ${known.map((n) => `#${n}`).join(', ')}` : '';
  }

  values(area) {
    return [...new Set(area.value.split(/[\s,]+/).map((v) => v.trim()).filter(Boolean))];
  }

  get base() {
    return `/orgs/${enc(this.ctx.org)}/nodes/${enc(this.ctx.node.node_id)}/config`;
  }

  async load() {
    try {
      const { data } = await this.ctx.api('GET', this.base);
      this.version = data.version ?? null;
      const routing = (data.config && data.config.routing) || {};
      for (const claim of CLAIMS) {
        const list = Array.isArray(routing[claim.key]) ? routing[claim.key] : [];
        this.fields[claim.key].area.value = list.join('\n');
      }
      this.showChannelNames(this.fields.slack_channel_ids.area, this.fields.slack_channel_ids.names);
    } catch (error) {
      this.result.className = 'save-result form-error';
      this.result.textContent = error.message;
    }
  }

  async save() {
    const routing = {};
    for (const claim of CLAIMS) routing[claim.key] = this.values(this.fields[claim.key].area);
    this.saveButton.disabled = true;
    this.result.textContent = '';
    try {
      const headers = this.version !== null ? { 'If-Match': `"${this.version}"` } : {};
      const { data } = await this.ctx.api('PATCH', this.base, { body: { routing }, headers });
      this.version = data.version ?? this.version;
      this.result.className = 'save-result ok';
      this.result.textContent = 'Saved. New deliveries route by these claims from now on.';
      toast('Routing saved.');
    } catch (error) {
      this.result.className = 'save-result form-error';
      if (error.status === 409) this.result.textContent = `Not saved: another team already claims one of these. ${error.message}`;
      else if (error.status === 412) this.result.textContent = `Not saved: the config changed since you opened it. Reload this tab and try again. (${error.message})`;
      else this.result.textContent = `Not saved: ${error.message}`;
    } finally {
      this.saveButton.disabled = false;
    }
  }
}
