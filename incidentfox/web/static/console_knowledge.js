// Console tab for a team's knowledge base: its runbooks and past incidents, markdown uploads, search.

import { el, clear, confirmDialog, isoShort, link, toast } from './ui.js';

function enc(value) {
  return encodeURIComponent(value);
}

/** Where an uploaded file is kept and cited: runbooks/<its name, with only the characters a path allows>. */
export function runbookPath(fileName) {
  const name = String(fileName || '').split(/[\\/]/).pop().replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+/, '');
  return `runbooks/${name || 'runbook.md'}`;
}

/** Why the server skipped an upload: its own reason for the file when it gave one, else its message. */
function skipReason(error) {
  const skipped = error.body && error.body.details && Array.isArray(error.body.details.skipped) ? error.body.details.skipped : [];
  return skipped.length && skipped[0].reason ? String(skipped[0].reason) : error.message;
}

function describeSearch(search) {
  if (!search) return '';
  if (search.mode === 'hybrid') return `Search: keywords + embeddings (${search.embedding_model || 'model'})`;
  return `Search: keywords only${search.reason ? ` — ${search.reason}` : ''}`;
}

export class KnowledgeTab {
  constructor(ctx) {
    this.ctx = ctx;
    this.modeNode = el('span', { class: 'muted small', 'data-testid': 'knowledge-search-mode' });
    this.summary = el('p', { class: 'muted small', 'data-testid': 'knowledge-summary', role: 'status' });
    this.listNode = el('div');
    this.fileInput = el('input', { type: 'file', multiple: true, accept: '.md,.markdown,text/markdown,text/plain', class: 'input', 'aria-label': 'Markdown runbooks to upload', 'data-testid': 'knowledge-file' });
    this.uploadButton = el('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'knowledge-upload', text: 'Upload' });
    this.uploadResult = el('ul', { class: 'knowledge-results', 'data-testid': 'knowledge-upload-results', 'aria-live': 'polite' });
    this.query = el('input', { type: 'search', class: 'input', placeholder: 'e.g. the database ran out of connections', 'aria-label': 'Search the knowledge base', 'data-testid': 'knowledge-query' });
    this.searchStatus = el('div', { class: 'muted small', role: 'status', 'data-testid': 'knowledge-search-status' });
    this.hits = el('ol', { class: 'knowledge-hits' });
    this.node = el('div', { class: 'knowledge-tab' },
      el('section', { class: 'card' },
        el('div', { class: 'card-head' }, el('h3', { text: 'Knowledge' }), this.modeNode),
        this.summary, this.listNode),
      el('section', { class: 'card' },
        el('div', { class: 'card-head' }, el('h3', { text: 'Upload runbooks' })),
        el('p', { class: 'muted small', text: 'Markdown files, UTF-8, at most 1 MiB each. A file with the same name replaces the earlier copy; each is kept and cited as runbooks/<file name>.' }),
        el('form', { class: 'inline-form', onsubmit: (event) => { event.preventDefault(); this.upload(); } }, this.fileInput, this.uploadButton),
        this.uploadResult),
      el('section', { class: 'card' },
        el('div', { class: 'card-head' }, el('h3', { text: 'Search' })),
        el('form', { class: 'inline-form', onsubmit: (event) => { event.preventDefault(); this.search(); } },
          this.query, el('button', { type: 'submit', class: 'btn', 'data-testid': 'knowledge-search', text: 'Search' })),
        this.searchStatus, this.hits));
  }

  get base() {
    return `/orgs/${enc(this.ctx.org)}/nodes/${enc(this.ctx.node.node_id)}/knowledge`;
  }

  async load() {
    let data;
    try {
      ({ data } = await this.ctx.api('GET', this.base));
    } catch (error) {
      clear(this.listNode);
      this.listNode.append(el('div', { class: 'form-error', role: 'alert', text: error.message }));
      return;
    }
    const documents = Array.isArray(data.documents) ? data.documents : [];
    const runbooks = documents.filter((d) => d.kind === 'runbook');
    const incidents = documents.filter((d) => d.kind === 'incident').length;
    this.modeNode.textContent = describeSearch(data.search);
    this.summary.textContent = `${runbooks.length} runbook${runbooks.length === 1 ? '' : 's'} · ${incidents} past incident${incidents === 1 ? '' : 's'} with an RCA`;
    this.summary.dataset.runbooks = String(runbooks.length);
    this.summary.dataset.incidents = String(incidents);
    clear(this.listNode);
    if (!runbooks.length) {
      this.listNode.append(el('p', { class: 'muted', text: 'No runbooks yet. Upload markdown files below.' }));
      return;
    }
    this.listNode.append(el('table', { class: 'table' },
      el('thead', {}, el('tr', {}, el('th', { text: 'Runbook' }), el('th', { text: 'Title' }), el('th', { text: 'Passages' }), el('th', { text: 'Updated' }), el('th', {}))),
      el('tbody', {}, runbooks.map((doc) => el('tr', { 'data-testid': 'runbook-row', 'data-path': doc.source || '' },
        el('td', {}, el('code', { text: doc.source || '' })),
        el('td', {}, doc.url ? link(doc.url, doc.title || doc.source || '') : el('span', { text: doc.title || '' })),
        el('td', { text: String(doc.passages ?? '') }),
        el('td', { class: 'nowrap', text: isoShort(doc.updated_at) }),
        el('td', {}, el('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'runbook-delete', text: 'Delete', onclick: () => this.remove(doc.source) })))))));
  }

  async upload() {
    const files = [...(this.fileInput.files || [])];
    clear(this.uploadResult);
    if (!files.length) {
      this.uploadResult.append(el('li', { class: 'form-error', text: 'Choose one or more markdown files first.' }));
      return;
    }
    this.uploadButton.disabled = true;
    for (const file of files) {
      const path = runbookPath(file.name);
      const row = el('li', { 'data-testid': 'upload-result', 'data-file': file.name }, el('code', { text: file.name }), ' ');
      this.uploadResult.append(row);
      try {
        const { data } = await this.ctx.api('PUT', `${this.base}/runbooks/${path.split('/').map(enc).join('/')}`, { raw: file, headers: { 'Content-Type': 'text/markdown; charset=utf-8' } });
        const added = (data.added || [])[0] || { path };
        row.dataset.outcome = 'added';
        row.append(el('span', { class: 'chip chip-active', text: 'added' }), ` as ${added.path}`,
          added.title ? ` — “${added.title}”` : '', added.passages ? ` (${added.passages} passage${added.passages === 1 ? '' : 's'})` : '');
      } catch (error) {
        row.dataset.outcome = 'skipped';
        row.append(el('span', { class: 'chip chip-revoked', text: 'skipped' }), ' ', el('span', { class: 'form-error', 'data-testid': 'upload-reason', text: skipReason(error) }));
      }
    }
    this.uploadButton.disabled = false;
    this.fileInput.value = '';
    await this.load();
  }

  async remove(path) {
    const ok = await confirmDialog({
      title: 'Delete this runbook?',
      body: el('p', {}, 'The investigations of this team will no longer find or cite ', el('code', { text: path }), '.'),
      confirmText: 'Delete', danger: true,
    });
    if (!ok) return;
    try {
      await this.ctx.api('DELETE', `${this.base}/runbooks/${String(path).split('/').map(enc).join('/')}`);
      toast(`Deleted ${path}.`);
    } catch (error) {
      toast(`Could not delete ${path}: ${error.message}`, { kind: 'error' });
    }
    await this.load();
  }

  async search() {
    const q = this.query.value.trim();
    clear(this.hits);
    this.searchStatus.className = 'muted small';
    if (!q) {
      this.searchStatus.textContent = 'Type what you are looking for.';
      return;
    }
    this.searchStatus.textContent = 'Searching…';
    let data;
    try {
      ({ data } = await this.ctx.api('GET', `${this.base}/search`, { query: { q, limit: 5 } }));
    } catch (error) {
      this.searchStatus.className = 'form-error';
      this.searchStatus.textContent = error.message;
      return;
    }
    const results = Array.isArray(data.results) ? data.results : [];
    this.searchStatus.textContent = results.length
      ? `${results.length} result${results.length === 1 ? '' : 's'}${data.searched ? ` from ${data.searched} passages` : ''}. ${describeSearch(data.search)}`
      : `Nothing matched. ${describeSearch(data.search)}`;
    for (const hit of results) {
      this.hits.append(el('li', { class: 'knowledge-hit', 'data-testid': 'knowledge-hit', 'data-kind': hit.kind || '' },
        el('div', { class: 'knowledge-hit-head' },
          el('span', { class: 'chip chip-neutral', text: hit.kind || 'result' }),
          el('b', { text: hit.title || hit.path || hit.run_id || '' }),
          typeof hit.score === 'number' ? el('span', { class: 'muted small', text: `score ${hit.score.toFixed(2)}` }) : null),
        el('div', { class: 'knowledge-cite small' }, 'Cited as ',
          hit.url ? link(hit.url, hit.cite || '', { 'data-testid': 'knowledge-cite' }) : el('code', { 'data-testid': 'knowledge-cite', text: hit.cite || '' })),
        el('p', { class: 'knowledge-text', text: hit.text || '' })));
    }
  }
}
