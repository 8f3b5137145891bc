// Slack-style modals: a stack of views; only the top one is visible.

import { el, clear, sameJson, toast } from './ui.js';
import { plainText } from './mrkdwn.js';
import { collectValues, renderBlocks, showFieldErrors, validateInputs } from './blockkit.js';
import { uiApi } from './api.js';

export class ModalStack {
  constructor() {
    this.entries = []; // {view, overlay, dialog, body, errorBox, ctx, submitButton, closeButton}
    document.addEventListener('keydown', (event) => this.onKey(event));
  }

  get top() {
    return this.entries[this.entries.length - 1] || null;
  }

  find(viewId) {
    return this.entries.find((entry) => entry.view.id === viewId) || null;
  }

  /** Apply a view event from the server: open | push | update | close. */
  apply(action, view) {
    if (!view) return;
    if (action === 'close') { this.remove(view.id); return; }
    if (this.find(view.id)) { this.update(view); return; }
    if (action === 'update') {
      // an update for a modal we do not show (already closed): nothing to do
      return;
    }
    this.push(view);
  }

  push(view) {
    const entry = { view };
    this.render(entry);
    this.entries.push(entry);
    document.body.append(entry.overlay);
    this.showTop();
    entry.focusFirst();
  }

  update(view) {
    const entry = this.find(view.id);
    if (!entry || sameJson(entry.view, view)) return;
    const kept = new Map(entry.ctx.widgets.map((w) => [`${w.blockId}\u0000${w.actionId}`, w.widget.getState()]));
    const scroll = entry.body.scrollTop;
    const old = entry.overlay;
    entry.view = view;
    this.render(entry);
    for (const w of entry.ctx.widgets) {
      const state = kept.get(`${w.blockId}\u0000${w.actionId}`);
      if (state && state.type === w.widget.getState().type) w.widget.setState(state);
    }
    old.replaceWith(entry.overlay);
    entry.body.scrollTop = scroll;
    this.showTop();
  }

  /** Remove a view and everything stacked above it. */
  remove(viewId) {
    const index = this.entries.findIndex((entry) => entry.view.id === viewId);
    if (index < 0) return;
    for (const entry of this.entries.splice(index)) entry.overlay.remove();
    this.showTop();
  }

  clearAll() {
    for (const entry of this.entries.splice(0)) entry.overlay.remove();
  }

  showTop() {
    this.entries.forEach((entry, index) => { entry.overlay.hidden = index !== this.entries.length - 1; });
    document.body.classList.toggle('modal-open', this.entries.length > 0);
  }

  render(entry) {
    const view = entry.view;
    const titleId = `modal-title-${Math.random().toString(36).slice(2, 8)}`;
    entry.ctx = {
      surface: 'modal',
      widgets: [],
      onAction: (action) => this.sendAction(entry, action),
    };
    entry.errorBox = el('div', { class: 'modal-error', role: 'alert', hidden: true });
    entry.body = el('div', { class: 'modal-body' }, renderBlocks(view.blocks, entry.ctx), entry.errorBox);
    entry.closeButton = el('button', { type: 'button', class: 'btn', 'data-testid': 'modal-close', text: plainText(view.close) || (view.submit ? 'Cancel' : 'Close'), onclick: () => this.close(entry) });
    entry.submitButton = view.submit
      ? el('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'modal-submit', text: plainText(view.submit) || 'Submit', onclick: () => this.submit(entry) })
      : null;
    const back = this.entries.length > 0 && this.entries[0] !== entry
      ? el('button', { type: 'button', class: 'icon-btn modal-back', 'aria-label': 'Back', text: '‹', onclick: () => this.close(entry) })
      : null;
    entry.dialog = el('div', { class: 'modal', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': titleId, 'data-testid': 'modal', 'data-view-id': view.id || '', 'data-callback-id': view.callback_id || '' },
      el('div', { class: 'modal-head' },
        back,
        el('img', { class: 'modal-icon', src: '/ui/static/favicon.svg', alt: '' }),
        el('h2', { id: titleId, text: plainText(view.title) || 'IncidentFox' }),
        el('button', { type: 'button', class: 'icon-btn modal-x', 'aria-label': 'Close', 'data-testid': 'modal-dismiss', text: '×', onclick: () => this.close(entry) })),
      entry.body,
      el('div', { class: 'modal-foot' }, entry.closeButton, entry.submitButton));
    entry.overlay = el('div', { class: 'overlay modal-overlay' }, entry.dialog);
    entry.focusFirst = () => {
      const first = entry.ctx.widgets.find((w) => w.input);
      if (first) first.widget.focus();
      else (entry.submitButton || entry.closeButton).focus();
    };
  }

  onKey(event) {
    const entry = this.top;
    if (!entry || event.defaultPrevented) return;
    if (event.key === 'Escape') {
      event.preventDefault();
      this.close(entry);
    } else if (event.key === 'Enter' && (event.ctrlKey || event.metaKey) && entry.submitButton) {
      event.preventDefault();
      this.submit(entry);
    }
  }

  async close(entry) {
    if (!this.entries.includes(entry)) return;
    this.remove(entry.view.id);
    try {
      await uiApi('POST', `/views/${encodeURIComponent(entry.view.id)}/close`);
    } catch (error) {
      toast(error.message, { kind: 'error' });
    }
  }

  setBusy(entry, busy) {
    if (entry.submitButton) {
      entry.submitButton.disabled = busy;
      entry.submitButton.classList.toggle('busy', busy);
    }
  }

  showError(entry, messages) {
    entry.errorBox.hidden = !messages.length;
    clear(entry.errorBox);
    for (const message of messages) entry.errorBox.append(el('div', { text: message }));
  }

  async submit(entry) {
    if (!entry.submitButton || entry.submitButton.disabled) return;
    const local = validateInputs(entry.ctx.widgets);
    if (Object.keys(local).length) {
      this.showError(entry, showFieldErrors(entry.body, local));
      scrollToFirstError(entry.body);
      return;
    }
    showFieldErrors(entry.body, {});
    this.showError(entry, []);
    this.setBusy(entry, true);
    let answer;
    try {
      answer = await uiApi('POST', `/views/${encodeURIComponent(entry.view.id)}/submit`, { values: collectValues(entry.ctx.widgets) });
    } catch (error) {
      this.showError(entry, [error.message]);
      return;
    } finally {
      this.setBusy(entry, false);
    }
    const action = answer && answer.response_action;
    if (action === 'errors') {
      this.showError(entry, showFieldErrors(entry.body, answer.errors || {}));
      scrollToFirstError(entry.body);
    } else if (action === 'update') {
      if (answer.view) this.update({ ...answer.view, id: answer.view.id || entry.view.id });
    } else if (action === 'push') {
      if (answer.view && answer.view.id && !this.find(answer.view.id)) this.push(answer.view);
    } else if (action === 'clear') {
      this.clearAll();
      this.showTop();
    } else {
      this.remove(entry.view.id);
    }
  }

  async sendAction(entry, action) {
    try {
      await uiApi('POST', '/actions', {
        container: { type: 'view', view_id: entry.view.id },
        ...action,
        state: { values: collectValues(entry.ctx.widgets) },
      });
    } catch (error) {
      toast(error.message, { kind: 'error' });
    }
  }
}

function scrollToFirstError(root) {
  const first = root.querySelector('[data-testid="field-error"]');
  if (first) first.scrollIntoView({ block: 'nearest' });
}
