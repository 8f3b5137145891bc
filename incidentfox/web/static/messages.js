// One message as DOM, and a list that keeps messages in ts order and updates them in place.

import { el, clear, avatar, clockTime, fullDate, tsToDate, dayKey, dayLabel, sameJson } from './ui.js';
import { renderMrkdwn } from './mrkdwn.js';
import { renderBlocks } from './blockkit.js';
import { directory } from './directory.js';
import { renderFiles } from './files.js';

export function compareTs(a, b) {
  const x = parseFloat(a);
  const y = parseFloat(b);
  if (x !== y) return x < y ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

export function isTopLevel(msg) {
  return !msg.thread_ts || msg.thread_ts === msg.ts;
}

export function messageKey(msg) {
  return (msg.ephemeral ? 'e:' : '') + msg.ts;
}

function isOurBot(msg) {
  return Boolean(directory.bot && msg.user === directory.bot.user_id);
}

function continues(prev, msg) {
  if (!prev || prev.ephemeral || msg.ephemeral || msg.pinned) return false;
  if (prev.user !== msg.user) return false;
  const a = tsToDate(prev.ts);
  const b = tsToDate(msg.ts);
  if (!a || !b || dayKey(a) !== dayKey(b)) return false;
  return b - a < 5 * 60 * 1000;
}

/**
 * opts: {continued, showThreadSummary, onOpenThread(msg), onAction(msg, action), onDismiss(msg)}
 */
export function renderMessage(msg, opts = {}) {
  const date = tsToDate(msg.ts);
  const bot = Boolean(msg.is_bot);
  const name = msg.user_name || msg.user || 'unknown';
  const classes = ['msg'];
  if (opts.continued) classes.push('continued');
  if (msg.ephemeral) classes.push('ephemeral');
  if (msg.pinned) classes.push('pinned');
  const node = el('div', {
    class: classes.join(' '),
    'data-testid': 'message',
    'data-ts': msg.ts,
    'data-thread-ts': msg.thread_ts || '',
    'data-user-id': msg.user || '',
    'data-bot': bot ? '1' : null,
    'data-ephemeral': msg.ephemeral ? '1' : null,
  });
  const time = el('time', { class: 'msg-time', dateTime: date ? date.toISOString() : '', title: fullDate(date), text: clockTime(date) });
  const gutter = el('div', { class: 'msg-gutter' }, opts.continued ? time : avatar(msg.user, name, { bot: bot && (isOurBot(msg) || !directory.users.has(msg.user)) }));
  const body = el('div', { class: 'msg-body' });
  if (msg.ephemeral) body.append(el('div', { class: 'msg-ephemeral-note' }, el('span', { class: 'eye', 'aria-hidden': 'true', text: '👁' }), ' Only visible to you'));
  if (msg.pinned) body.append(el('div', { class: 'msg-pinned-note', text: '📌 Pinned' }));
  if (!opts.continued) {
    body.append(el('div', { class: 'msg-head' },
      el('span', { class: 'msg-name', text: name }),
      bot ? el('span', { class: 'app-badge', text: 'APP' }) : null,
      time));
  }
  const hasBlocks = Array.isArray(msg.blocks) && msg.blocks.length > 0;
  const content = hasBlocks
    ? renderBlocks(msg.blocks, { surface: 'message', onAction: (action) => opts.onAction && opts.onAction(msg, action) })
    : renderMrkdwn(msg.text || '');
  content.classList.add('msg-content');
  content.setAttribute('data-testid', 'message-text');
  body.append(content);
  const files = renderFiles(msg.files);
  if (files) body.append(files);
  if (msg.edited) body.append(el('span', { class: 'msg-edited', title: 'This message was edited', text: '(edited)' }));
  if (opts.showThreadSummary && msg.reply_count > 0) body.append(threadSummary(msg, opts));
  if (msg.ephemeral) {
    body.append(el('div', { class: 'msg-ephemeral-foot' },
      el('button', { type: 'button', class: 'linkish', 'data-testid': 'ephemeral-dismiss', text: 'Dismiss message', onclick: () => opts.onDismiss && opts.onDismiss(msg) })));
  }
  node.append(gutter, body);
  return node;
}

function threadSummary(msg, opts) {
  const last = msg.latest_reply ? tsToDate(msg.latest_reply) : null;
  const count = msg.reply_count === 1 ? '1 reply' : `${msg.reply_count} replies`;
  return el('button', {
    type: 'button', class: 'thread-summary', 'data-testid': 'thread-summary', 'data-thread-ts': msg.ts,
    onclick: () => opts.onOpenThread && opts.onOpenThread(msg),
  },
  el('span', { class: 'thread-count', text: count }),
  last ? el('span', { class: 'thread-last', title: fullDate(last), text: `Last reply ${clockTime(last)}` }) : null,
  el('span', { class: 'thread-view', text: 'View thread ›' }));
}

/** Messages of a channel or thread, sorted by ts; updates replace nodes without moving the scroll. */
export class MessageList {
  constructor({ scroller, mode = 'channel', empty = null, ...handlers }) {
    this.scroller = scroller;
    this.mode = mode; // 'channel' | 'thread'
    this.empty = empty;
    this.handlers = handlers; // onOpenThread, onAction, onDismiss
    this.messages = [];
    this.nodes = new Map();
    this.list = el('div', { class: 'msg-list', role: 'log', 'aria-live': 'polite' });
    scroller.append(this.list);
    // Stay at the bottom across reflows (a pane opening, images loading) when the reader was there.
    this.stuck = true;
    scroller.addEventListener('scroll', () => { this.stuck = this.nearBottom(); }, { passive: true });
    if (typeof ResizeObserver === 'function') {
      const observer = new ResizeObserver(() => { if (this.stuck) this.scrollToBottom(); });
      observer.observe(scroller);
      observer.observe(this.list);
    }
  }

  nearBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  }

  keepBottom(change, force = false) {
    const stick = force || this.stuck || this.nearBottom();
    change();
    if (stick) this.scrollToBottom();
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.stuck = true;
  }

  set(messages, { toBottom = true } = {}) {
    this.messages = [...messages].sort((a, b) => compareTs(a.ts, b.ts));
    this.renderAll();
    if (toBottom) this.scrollToBottom();
  }

  get(ts) {
    return this.messages.find((msg) => msg.ts === ts && !msg.ephemeral) || null;
  }

  nodeFor(msg) {
    const prev = this.previous(msg);
    return renderMessage(msg, {
      ...this.handlers,
      continued: this.mode === 'thread' && (this.isParent(msg) || (prev && this.isParent(prev))) ? false : continues(prev, msg),
      showThreadSummary: this.mode === 'channel',
    });
  }

  isParent(msg) {
    return this.mode === 'thread' && this.messages[0] === msg;
  }

  previous(msg) {
    const index = this.messages.indexOf(msg);
    return index > 0 ? this.messages[index - 1] : null;
  }

  renderAll() {
    clear(this.list);
    this.nodes.clear();
    if (!this.messages.length && this.empty) {
      this.list.append(this.empty());
      return;
    }
    let lastDay = null;
    this.messages.forEach((msg, index) => {
      const day = dayKey(tsToDate(msg.ts));
      if (this.mode === 'channel' && day !== lastDay) this.list.append(dayDivider(msg));
      lastDay = day;
      const node = this.nodeFor(msg);
      this.nodes.set(messageKey(msg), node);
      this.list.append(node);
      if (this.mode === 'thread' && index === 0) this.list.append(this.replySeparator());
    });
  }

  replySeparator() {
    const count = Math.max(0, this.messages.filter((m) => !m.ephemeral).length - 1);
    return el('div', { class: 'thread-sep' }, el('span', { text: count === 1 ? '1 reply' : `${count} replies` }));
  }

  /** Insert or replace; returns true when the message was new to this list. */
  upsert(msg) {
    const key = messageKey(msg);
    const index = this.messages.findIndex((m) => messageKey(m) === key);
    if (index >= 0) {
      if (sameJson(this.messages[index], msg)) return false; // nothing changed: keep the node
      this.messages[index] = msg;
      const old = this.nodes.get(key);
      const node = this.nodeFor(msg);
      this.nodes.set(key, node);
      this.keepBottom(() => (old ? old.replaceWith(node) : this.renderAll()));
      return false;
    }
    const position = this.messages.findIndex((m) => compareTs(m.ts, msg.ts) > 0);
    this.keepBottom(() => {
      if (position < 0 && this.messages.length && this.mode === 'channel') {
        const prev = this.messages[this.messages.length - 1];
        this.messages.push(msg);
        if (dayKey(tsToDate(prev.ts)) !== dayKey(tsToDate(msg.ts))) this.list.append(dayDivider(msg));
        const node = this.nodeFor(msg);
        this.nodes.set(key, node);
        this.list.append(node);
      } else {
        if (position < 0) this.messages.push(msg);
        else this.messages.splice(position, 0, msg);
        this.renderAll();
      }
    }, msg.user && directory.me && msg.user === directory.me.id);
    return true;
  }

  remove(ts, { ephemeral = false } = {}) {
    const key = (ephemeral ? 'e:' : '') + ts;
    const index = this.messages.findIndex((m) => messageKey(m) === key);
    if (index < 0) return false;
    this.messages.splice(index, 1);
    this.keepBottom(() => this.renderAll());
    return true;
  }

  /** Scroll a message into view and flash it. */
  reveal(ts) {
    const node = this.nodes.get(ts);
    if (!node) return false;
    node.scrollIntoView({ block: 'center', behavior: 'smooth' });
    node.classList.remove('flash');
    void node.offsetWidth;
    node.classList.add('flash');
    return true;
  }
}

function dayDivider(msg) {
  return el('div', { class: 'day-divider', role: 'separator' }, el('span', { text: dayLabel(tsToDate(msg.ts)) }));
}
