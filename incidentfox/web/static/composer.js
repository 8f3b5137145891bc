// The message composer: Enter sends, Shift+Enter adds a line, "@" and "/" autocomplete.

import { el, clear, avatar } from './ui.js';
import { directory, sortedUsers } from './directory.js';

export const SUBCOMMANDS = [
  { name: 'investigate', args: '<text>', detail: 'Start an investigation in a new thread here' },
  { name: 'setup', args: '', detail: 'Set up a team for this channel, or join it to one' },
  { name: 'status', args: '', detail: "Runs of this channel's team" },
  { name: 'config', args: '', detail: "Show this team's config" },
  { name: 'debug', args: '<task>', detail: 'Hand a task to the SRE agent' },
  { name: 'help', args: '', detail: 'What IncidentFox can do' },
];

const COMMAND = '/incidentfox';

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Turn the mentions a person picked (display -> user id) and a typed "@<bot name>" into Slack syntax.
 */
export function toSlackText(text, mentions = new Map(), bot = directory.bot) {
  let out = text;
  const displays = [...mentions.keys()].sort((a, b) => b.length - a.length);
  for (const display of displays) {
    out = out.replace(new RegExp(`(?<![\\w.])${escapeRegExp(display)}(?![\\w-])`, 'g'), `<@${mentions.get(display)}>`);
  }
  if (bot && bot.user_id) {
    const names = new Set([bot.name || 'IncidentFox', 'IncidentFox']);
    for (const name of names) out = out.replace(new RegExp(`(?<![\\w.])@${escapeRegExp(name)}(?![\\w-])`, 'gi'), `<@${bot.user_id}>`);
  }
  return out;
}

/** What "/..." text means: {command: true, text} for /incidentfox, {unknown: "/word"} otherwise, or null. */
export function parseSlash(text) {
  const trimmed = text.trim();
  if (!trimmed.startsWith('/')) return null;
  const match = /^\/incidentfox(?:\s+([\s\S]*))?$/i.exec(trimmed);
  if (match) return { command: true, text: (match[1] || '').trim() };
  return { unknown: trimmed.split(/\s/)[0] };
}

export class Composer {
  /**
   * onSend({text, command}) -> Promise (reject with an Error whose message is shown);
   * onUnknownCommand(word) shows a local hint.
   */
  constructor({ placeholder = '', testid = 'composer', onSend, onUnknownCommand }) {
    this.onSend = onSend;
    this.onUnknownCommand = onUnknownCommand;
    this.mentions = new Map();
    this.menuItems = [];
    this.active = 0;
    this.range = null;
    this.sending = false;

    this.textarea = el('textarea', { class: 'composer-input', rows: 1, placeholder, 'data-testid': testid, 'aria-label': placeholder || 'Message', 'aria-autocomplete': 'list' });
    this.menu = el('div', { class: 'ac-menu', role: 'listbox', hidden: true });
    this.sendButton = el('button', { type: 'button', class: 'composer-send', 'aria-label': 'Send', title: 'Send (Enter)', text: '➤', onclick: () => this.send() });
    this.error = el('div', { class: 'composer-error', role: 'alert', hidden: true });
    this.node = el('div', { class: 'composer' },
      this.menu,
      el('div', { class: 'composer-box' }, this.textarea,
        el('div', { class: 'composer-bar' },
          el('span', { class: 'composer-hint', text: 'Enter to send · Shift+Enter for a new line · @ to mention · / for commands' }),
          this.sendButton)),
      this.error);

    this.textarea.addEventListener('input', () => { this.autosize(); this.showError(''); this.refreshMenu(); });
    this.textarea.addEventListener('click', () => this.refreshMenu());
    this.textarea.addEventListener('blur', () => setTimeout(() => this.closeMenu(), 150));
    this.textarea.addEventListener('keydown', (event) => this.onKey(event));
  }

  setPlaceholder(text) {
    this.textarea.placeholder = text;
    this.textarea.setAttribute('aria-label', text);
  }

  focus() {
    this.textarea.focus();
  }

  autosize() {
    this.textarea.style.height = 'auto';
    this.textarea.style.height = `${Math.min(this.textarea.scrollHeight, 240)}px`;
  }

  showError(message) {
    this.error.hidden = !message;
    this.error.textContent = message || '';
  }

  onKey(event) {
    if (event.isComposing || event.keyCode === 229) return;
    if (!this.menu.hidden && this.menuItems.length) {
      if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
        event.preventDefault();
        const step = event.key === 'ArrowDown' ? 1 : -1;
        this.active = (this.active + step + this.menuItems.length) % this.menuItems.length;
        this.renderMenu();
        return;
      }
      if ((event.key === 'Enter' && !event.shiftKey) || event.key === 'Tab') {
        event.preventDefault();
        this.pick(this.menuItems[this.active]);
        return;
      }
      if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        this.closeMenu();
        return;
      }
    }
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      this.send();
    }
  }

  // ---- autocomplete

  refreshMenu() {
    const caret = this.textarea.selectionStart;
    const before = this.textarea.value.slice(0, caret);
    let match;
    let items = [];
    if ((match = /^\/([\w-]*)$/.exec(before))) {
      const typed = `/${match[1].toLowerCase()}`;
      if (COMMAND.startsWith(typed)) {
        items = [{ label: COMMAND, detail: 'Ask IncidentFox', insert: `${COMMAND} ` },
          ...SUBCOMMANDS.map((sub) => ({ label: `${COMMAND} ${sub.name}${sub.args ? ' ' + sub.args : ''}`, detail: sub.detail, insert: `${COMMAND} ${sub.name} ` }))];
      }
      this.range = [0, caret];
    } else if ((match = /^\/incidentfox\s+(\S*)$/i.exec(before))) {
      const typed = match[1].toLowerCase();
      items = SUBCOMMANDS.filter((sub) => sub.name.startsWith(typed) && sub.name !== typed)
        .map((sub) => ({ label: `${sub.name}${sub.args ? ' ' + sub.args : ''}`, detail: sub.detail, insert: `${COMMAND} ${sub.name} ` }));
      this.range = [0, caret];
    } else if ((match = /(^|\s)@([\w.-]*)$/.exec(before))) {
      const query = match[2].toLowerCase();
      const botId = directory.bot && directory.bot.user_id;
      items = sortedUsers().filter((user) => {
        const names = [user.name, user.real_name, user.id === botId ? directory.bot.name : ''].filter(Boolean).map((n) => n.toLowerCase());
        return !query || names.some((n) => n.startsWith(query) || n.split(/\s+/).some((w) => w.startsWith(query)));
      }).slice(0, 8).map((user) => {
        const isBot = user.id === botId;
        const handle = isBot ? directory.bot.name || user.name : user.name || user.real_name || user.id;
        return { label: isBot ? handle : user.real_name || handle, detail: isBot ? 'APP' : `@${handle}`, insert: `@${handle} `, mention: { display: `@${handle}`, id: user.id }, user, isBot };
      });
      this.range = [caret - match[2].length - 1, caret];
    }
    this.menuItems = items;
    this.active = 0;
    if (items.length) this.renderMenu();
    else this.closeMenu();
  }

  renderMenu() {
    clear(this.menu);
    this.menuItems.forEach((item, index) => {
      const row = el('div', {
        class: index === this.active ? 'ac-item active' : 'ac-item', role: 'option', 'aria-selected': String(index === this.active),
        'data-testid': 'autocomplete-item', 'data-value': item.insert.trim(),
        onmousedown: (event) => { event.preventDefault(); this.pick(item); },
      },
      item.user ? avatar(item.user.id, item.label, { bot: item.isBot, size: 20 }) : el('span', { class: 'ac-slash', text: '/' }),
      el('span', { class: 'ac-label', text: item.label }),
      el('span', { class: item.detail === 'APP' ? 'app-badge' : 'ac-detail', text: item.detail }));
      this.menu.append(row);
    });
    this.menu.hidden = false;
    const active = this.menu.children[this.active];
    if (active) active.scrollIntoView({ block: 'nearest' });
  }

  closeMenu() {
    this.menu.hidden = true;
    this.menuItems = [];
  }

  pick(item) {
    if (!item || !this.range) return;
    const [start, end] = this.range;
    const value = this.textarea.value;
    this.textarea.value = value.slice(0, start) + item.insert + value.slice(end);
    const caret = start + item.insert.length;
    this.textarea.setSelectionRange(caret, caret);
    if (item.mention) this.mentions.set(item.mention.display, item.mention.id);
    this.closeMenu();
    this.autosize();
    this.textarea.focus();
  }

  // ---- sending

  async send() {
    if (this.sending) return;
    const raw = this.textarea.value;
    if (!raw.trim()) return;
    const slash = parseSlash(raw);
    if (slash && slash.unknown) {
      this.onUnknownCommand && this.onUnknownCommand(slash.unknown);
      return;
    }
    const payload = slash ? { command: true, text: toSlackText(slash.text, this.mentions) } : { command: false, text: toSlackText(raw, this.mentions) };
    this.sending = true;
    this.textarea.readOnly = true;
    this.sendButton.disabled = true;
    this.node.classList.add('busy');
    try {
      await this.onSend(payload);
      this.textarea.value = '';
      this.mentions.clear();
      this.autosize();
      this.showError('');
    } catch (error) {
      this.showError(error.message || String(error));
    } finally {
      this.sending = false;
      this.textarea.readOnly = false;
      this.sendButton.disabled = false;
      this.node.classList.remove('busy');
      this.textarea.focus();
    }
  }
}
