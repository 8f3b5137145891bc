// Console tab for investigation runs: a list with status chips, and a run's timeline.

import { el, append, clear, isoShort } from './ui.js';
import { renderMrkdwn } from './mrkdwn.js';
import { channelName } from './directory.js';

function enc(value) {
  return encodeURIComponent(value);
}

const PAGE = 50;
const STATUS_CLASS = {
  queued: 'neutral', pending: 'neutral', running: 'running', in_progress: 'running', waiting_approval: 'waiting',
  succeeded: 'active', success: 'active', completed: 'active', done: 'active',
  failed: 'revoked', error: 'revoked', interrupted: 'expired', cancelled: 'expired', canceled: 'expired', timed_out: 'expired',
};

export function statusChip(status) {
  const value = status || 'unknown';
  return el('span', { class: `chip chip-${STATUS_CLASS[value] || 'neutral'}`, 'data-status': value, text: value.replace(/_/g, ' ') });
}

function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds))) return '—';
  if (Number(seconds) < 1) return '<1 s';
  const total = Math.round(Number(seconds));
  if (total < 60) return `${total} s`;
  if (total < 3600) return `${Math.floor(total / 60)} min ${total % 60} s`;
  return `${Math.floor(total / 3600)} h ${Math.floor((total % 3600) / 60)} min`;
}

function offset(start, at) {
  const a = new Date(start).getTime();
  const b = new Date(at).getTime();
  if (!Number.isFinite(a) || !Number.isFinite(b)) return '';
  const seconds = Math.max(0, Math.round((b - a) / 1000));
  return `+${String(Math.floor(seconds / 60)).padStart(2, '0')}:${String(seconds % 60).padStart(2, '0')}`;
}

export class RunsTab {
  constructor(ctx) {
    this.ctx = ctx;
    this.before = null;
    this.tbody = el('tbody');
    this.more = el('button', { type: 'button', class: 'btn', 'data-testid': 'runs-more', text: 'Load more', hidden: true, onclick: () => this.fetch(false) });
    this.status = el('div', { class: 'muted small', role: 'status' });
    this.listView = el('section', { class: 'card' },
      el('div', { class: 'card-head' }, el('h3', { text: 'Runs' }),
        el('button', { type: 'button', class: 'btn btn-small', text: 'Refresh', onclick: () => this.fetch(true) })),
      el('table', { class: 'table runs-table' },
        el('thead', {}, el('tr', {}, el('th', { text: 'Status' }), el('th', { text: 'What' }), el('th', { text: 'Source' }),
          ctx.node.kind === 'team' ? null : el('th', { text: 'Team' }), el('th', { text: 'Started' }), el('th', { text: 'Took' }))),
        this.tbody),
      this.status, el('div', { class: 'button-row' }, this.more));
    this.detail = el('section', { class: 'card run-detail', hidden: true });
    this.node = el('div', { class: 'runs-tab' }, this.listView, this.detail);
  }

  load() {
    return this.fetch(true);
  }

  async fetch(reset) {
    if (reset) {
      clear(this.tbody);
      this.before = null;
    }
    const query = { limit: PAGE, before: this.before, team: this.ctx.node.kind === 'team' ? this.ctx.node.node_id : undefined };
    let runs;
    let next;
    try {
      const { data } = await this.ctx.api('GET', `/orgs/${enc(this.ctx.org)}/runs`, { query });
      runs = data.runs || [];
      next = data.next_before;
    } catch (error) {
      this.status.className = 'form-error';
      this.status.textContent = error.status === 404 ? 'Run history is not available from this server yet.' : error.message;
      return;
    }
    this.status.className = 'muted small';
    for (const run of runs) this.tbody.append(this.row(run));
    // the server says where the next page starts; older servers only hint by a full page
    this.before = next !== undefined ? next : runs.length ? runs[runs.length - 1].run_id : null;
    this.more.hidden = next !== undefined ? !next : runs.length < PAGE;
    const total = this.tbody.children.length;
    this.status.textContent = total ? `${total} run${total === 1 ? '' : 's'} shown. Click one to see its timeline.` : 'No runs yet.';
  }

  row(run) {
    const open = () => this.open(run.run_id);
    return el('tr', {
      class: 'clickable', tabindex: '0', 'data-testid': 'run-row', 'data-run-id': run.run_id || '', 'data-status': run.status || '',
      onclick: open, onkeydown: (event) => { if (event.key === 'Enter') open(); },
    },
    el('td', {}, statusChip(run.status)),
    el('td', { class: 'run-text' }, el('div', { text: run.text || '(no text)' }), el('div', { class: 'muted small' }, el('code', { text: run.run_id || '' }))),
    el('td', { text: [run.source, run.kind].filter(Boolean).join(' · ') || '—' }),
    this.ctx.node.kind === 'team' ? null : el('td', { text: run.team_node_id || '—' }),
    el('td', { class: 'nowrap', text: isoShort(run.started_at || run.created_at) }),
    el('td', { class: 'nowrap', text: duration(run.duration_s) }));
  }

  async open(runId) {
    clear(this.detail);
    this.detail.hidden = false;
    this.listView.hidden = true;
    const back = el('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'runs-back', text: '‹ All runs', onclick: () => { this.detail.hidden = true; this.listView.hidden = false; } });
    this.detail.append(el('div', { class: 'card-head' }, back), el('p', { class: 'muted', text: 'Loading…' }));
    let data;
    try {
      ({ data } = await this.ctx.api('GET', `/orgs/${enc(this.ctx.org)}/runs/${enc(runId)}`));
    } catch (error) {
      this.detail.lastChild.textContent = error.message;
      this.detail.lastChild.className = 'form-error';
      return;
    }
    const run = data.run || {};
    const timeline = Array.isArray(data.timeline) ? data.timeline : [];
    clear(this.detail);
    const meta = [
      ['Run', run.run_id], ['Team', run.team_node_id], ['Source', [run.source, run.kind].filter(Boolean).join(' · ')],
      ['Created', isoShort(run.created_at)], ['Started', isoShort(run.started_at)], ['Finished', isoShort(run.finished_at)],
      ['Took', duration(run.duration_s)],
      ['Channel', run.channel_id ? `#${channelName(run.channel_id) || run.channel_id}` : null], ['Thread', run.thread_ts],
      ['Origin', run.origin && typeof run.origin === 'object' ? JSON.stringify(run.origin) : run.origin],
      ['Feedback', run.feedback && (run.feedback.up || run.feedback.down) ? `👍 ${run.feedback.up || 0} · 👎 ${run.feedback.down || 0}` : null],
    ].filter(([, value]) => value && value !== '—');
    const start = run.started_at || run.created_at || (timeline[0] && timeline[0].at);
    append(this.detail, [
      el('div', { class: 'card-head' }, back),
      el('div', { class: 'run-title' }, statusChip(run.status), el('h3', { text: run.text || run.run_id || 'Run' })),
      el('dl', { class: 'meta' }, meta.map(([key, value]) => [el('dt', { text: key }), el('dd', {}, el('code', { text: String(value) }))])),
      run.error ? el('div', { class: 'form-error run-error', role: 'alert', text: String(run.error) }) : null,
      run.summary ? el('div', { class: 'run-summary' }, el('h4', { text: 'Summary' }), renderMrkdwn(String(run.summary))) : null,
      el('h4', { text: 'Timeline' }),
      timeline.length
        ? el('ol', { class: 'timeline', 'data-testid': 'timeline' }, timeline.map((item) => el('li', { class: `tl-item tl-${(item.kind || 'event').replace(/[^a-z0-9_-]/gi, '')}` },
          el('span', { class: 'tl-at', title: item.at || '', text: offset(start, item.at) || isoShort(item.at) }),
          el('span', { class: 'chip tl-kind', text: item.kind || 'event' }),
          el('span', { class: 'tl-text' }, renderMrkdwn(String(item.text ?? ''), { inline: true })))))
        : el('p', { class: 'muted', 'data-testid': 'timeline', text: 'No timeline recorded for this run.' })]);
  }
}
