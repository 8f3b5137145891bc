// The Slack-like workspace: sidebar, channel view, thread pane and App Home.

import { el, append, clear, avatar, toast } from './ui.js';
import { uiApi } from './api.js';
import { addChannel, directory } from './directory.js';
import { mrkdwnToText } from './mrkdwn.js';
import { MessageList, compareTs, isTopLevel, messageKey } from './messages.js';
import { Composer } from './composer.js';
import { HomePane } from './home.js';

let localCounter = 0;
function localTs() {
  localCounter = (localCounter + 1) % 1000;
  return `${Math.floor(Date.now() / 1000)}.${String(Date.now() % 1000).padStart(3, '0')}${String(localCounter).padStart(3, '0')}`;
}

export class Workspace {
  constructor(root, boot, modals) {
    this.root = root;
    this.boot = boot;
    this.modals = modals;
    this.store = new Map(); // channel -> {messages: Map ts -> msg, ephemerals: Map ts -> msg, loaded}
    this.seen = new Set(); // "channel:ts" of every message this page has seen
    this.unread = new Map();
    this.current = null; // {kind: 'channel', id} | {kind: 'home'}
    this.thread = null; // {channel, ts, list}
    this.pinnedIndex = 0;
    this.build();
    this.renderSidebar();
    this.home = new HomePane(this.homeHost, { onAction: (view, action) => this.sendAction({ type: 'view', view_id: view.id }, action) });
    const fromHash = new URLSearchParams(location.hash.slice(1)).get('c');
    if (fromHash === 'home') this.openHome();
    else this.openChannel(this.initialChannel(fromHash));
  }

  initialChannel(wanted) {
    if (wanted && directory.channels.has(wanted)) return wanted;
    const channels = [...directory.channels.values()];
    const first = channels.filter((c) => !c.is_im).sort((a, b) => a.name.localeCompare(b.name))[0] || channels[0];
    return first ? first.id : null;
  }

  entry(channel) {
    if (!this.store.has(channel)) this.store.set(channel, { messages: new Map(), ephemerals: new Map(), loaded: false });
    return this.store.get(channel);
  }

  // ---------------------------------------------------------------- layout

  build() {
    this.sidebarNav = el('nav', { class: 'ws-nav', 'aria-label': 'Channels' });
    this.sidebar = el('aside', { class: 'ws-sidebar' },
      el('div', { class: 'ws-team' }, el('span', { class: 'ws-team-name', text: (directory.team && directory.team.name) || 'Workspace' })),
      this.sidebarNav);
    this.titleNode = el('div', { class: 'ws-title' });
    this.topicNode = el('div', { class: 'ws-topic' });
    this.pinnedBar = el('button', { type: 'button', class: 'pinned-bar', 'data-testid': 'pinned-bar', hidden: true, onclick: () => this.revealPinned() });
    this.scroller = el('div', { class: 'ws-scroller' });
    this.list = new MessageList({
      scroller: this.scroller,
      empty: () => this.emptyState(),
      onOpenThread: (msg) => this.openThread(msg.channel, msg.ts),
      onAction: (msg, action) => this.messageAction(msg, action),
      onDismiss: (msg) => this.dismiss(msg),
    });
    this.composer = new Composer({
      testid: 'composer',
      onSend: (payload) => this.send(payload, null),
      onUnknownCommand: (word) => this.unknownCommand(word, null),
    });
    this.channelPane = el('div', { class: 'ws-channel' }, this.pinnedBar, this.scroller, this.composer.node);
    this.homeHost = el('div', { class: 'ws-home', hidden: true });
    this.header = el('header', { class: 'ws-header' },
      el('button', { type: 'button', class: 'icon-btn hamburger', 'aria-label': 'Show channels', text: '☰', onclick: () => this.toggleSidebar() }),
      el('div', { class: 'ws-header-text' }, this.titleNode, this.topicNode));
    this.main = el('main', { class: 'ws-main' }, this.header, this.channelPane, this.homeHost);

    this.threadTitle = el('div', { class: 'ws-thread-title' });
    this.threadScroller = el('div', { class: 'ws-scroller' });
    this.threadComposer = new Composer({
      testid: 'thread-composer',
      placeholder: 'Reply…',
      onSend: (payload) => this.send(payload, this.thread),
      onUnknownCommand: (word) => this.unknownCommand(word, this.thread),
    });
    this.threadPane = el('section', { class: 'ws-thread', 'data-testid': 'thread-pane', hidden: true, 'aria-label': 'Thread' },
      el('header', { class: 'ws-thread-head' }, this.threadTitle,
        el('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Close thread', 'data-testid': 'thread-close', text: '×', onclick: () => this.closeThread() })),
      this.threadScroller, this.threadComposer.node);
    this.scrim = el('div', { class: 'ws-scrim', onclick: () => this.toggleSidebar(false) });
    this.root.append(el('div', { class: 'ws' }, this.sidebar, this.scrim, this.main, this.threadPane));
    this.wsNode = this.root.lastChild;
  }

  toggleSidebar(open) {
    this.wsNode.classList.toggle('sidebar-open', open === undefined ? !this.wsNode.classList.contains('sidebar-open') : open);
  }

  renderSidebar() {
    clear(this.sidebarNav);
    const isHome = this.current && this.current.kind === 'home';
    this.sidebarNav.append(el('button', {
      type: 'button', class: isHome ? 'ws-link active' : 'ws-link', 'data-testid': 'home-tab-link', onclick: () => this.openHome(),
    }, avatar(directory.bot && directory.bot.user_id, 'IncidentFox', { bot: true, size: 18 }), el('span', { class: 'ws-link-name', text: 'Home' })));

    const channels = [...directory.channels.values()].sort((a, b) => (a.name || '').localeCompare(b.name || ''));
    const section = (title, items) => el('div', { class: 'ws-section' }, el('div', { class: 'ws-section-title', text: title }), items);
    this.sidebarNav.append(section('Channels', channels.filter((c) => !c.is_im).map((c) => this.channelLink(c))));
    this.sidebarNav.append(section('Direct messages', channels.filter((c) => c.is_im).map((c) => this.channelLink(c))));
    const demo = this.boot.demo || {};
    if (demo.enabled && Array.isArray(demo.actions) && demo.actions.length) {
      this.sidebarNav.append(section('Demo', demo.actions.map((action) => el('button', {
        type: 'button', class: 'ws-demo', 'data-testid': 'demo-action', 'data-action-id': action.id, title: action.description || '',
        onclick: (event) => this.runDemo(action, event.currentTarget),
      }, el('span', { class: 'ws-demo-icon', text: '▶' }), el('span', { text: action.label || action.id })))));
    }
    this.updateTitle();
  }

  channelLink(channel) {
    const count = this.unread.get(channel.id) || 0;
    const active = this.current && this.current.kind === 'channel' && this.current.id === channel.id;
    const prefix = channel.is_im ? avatar(directory.bot && directory.bot.user_id, channel.name, { bot: true, size: 18 }) : el('span', { class: 'ch-prefix', text: channel.is_private ? '🔒' : '#' });
    return el('button', {
      type: 'button',
      class: `ws-link${active ? ' active' : ''}${count ? ' unread' : ''}`,
      'data-testid': 'channel-link', 'data-channel-id': channel.id, 'data-channel-name': channel.name || '',
      onclick: () => this.openChannel(channel.id),
    }, prefix, el('span', { class: 'ws-link-name', text: channel.name || channel.id }),
    count ? el('span', { class: 'unread-badge', 'data-testid': 'unread-badge', text: String(count) }) : null);
  }

  updateTitle() {
    const total = [...this.unread.values()].reduce((a, b) => a + b, 0);
    let where = 'Home';
    if (this.current && this.current.kind === 'channel') {
      const channel = directory.channels.get(this.current.id);
      where = channel ? (channel.is_im ? channel.name : `#${channel.name}`) : '';
    }
    document.title = `${total ? `(${total}) ` : ''}${where} · ${(directory.team && directory.team.name) || 'IncidentFox'}`;
  }

  emptyState() {
    const bot = (directory.bot && directory.bot.name) || 'IncidentFox';
    return el('div', { class: 'empty-state' },
      el('div', { class: 'empty-fox' }, el('img', { src: '/ui/static/favicon.svg', alt: '', width: 56, height: 56 })),
      el('div', { class: 'empty-title', text: 'No messages yet.' }),
      el('div', {}, 'Try: ', el('code', { text: `@${bot} why is checkout failing?` })),
      el('div', {}, 'or ', el('code', { text: '/incidentfox help' })));
  }

  // ---------------------------------------------------------------- navigation

  async openChannel(id) {
    if (!id) return;
    const channel = directory.channels.get(id);
    if (!channel) return;
    const switching = !(this.current && this.current.kind === 'channel' && this.current.id === id);
    this.current = { kind: 'channel', id };
    directory.currentChannel = id;
    history.replaceState(null, '', `#c=${encodeURIComponent(id)}`);
    this.unread.delete(id);
    this.toggleSidebar(false);
    this.homeHost.hidden = true;
    this.channelPane.hidden = false;
    clear(this.titleNode);
    this.titleNode.append(channel.is_im ? channel.name : el('span', {}, el('span', { class: 'ch-prefix', text: channel.is_private ? '🔒 ' : '# ' }), channel.name));
    this.topicNode.textContent = channel.topic || (channel.is_im ? 'Direct message with IncidentFox' : '');
    this.composer.setPlaceholder(channel.is_im ? `Message ${channel.name}` : `Message #${channel.name}`);
    this.renderSidebar();
    if (switching) {
      this.closeThread();
      this.pinnedIndex = 0;
      const entry = this.entry(id);
      if (entry.loaded) this.showChannel({ toBottom: true });
      else this.list.set([], { toBottom: true });
    }
    await this.loadChannel(id, { toBottom: switching });
    this.composer.focus();
  }

  openHome() {
    this.current = { kind: 'home' };
    history.replaceState(null, '', '#c=home');
    this.toggleSidebar(false);
    this.closeThread();
    this.channelPane.hidden = true;
    this.homeHost.hidden = false;
    clear(this.titleNode);
    this.titleNode.append((directory.bot && directory.bot.name) || 'IncidentFox', el('span', { class: 'app-badge', text: 'APP' }));
    this.topicNode.textContent = 'Home';
    this.renderSidebar();
    this.home.open();
  }

  async loadChannel(id, { toBottom = false } = {}) {
    let data;
    try {
      data = await uiApi('GET', `/channels/${encodeURIComponent(id)}/messages`);
    } catch (error) {
      toast(`Could not load the channel: ${error.message}`, { kind: 'error' });
      return;
    }
    const entry = this.entry(id);
    const fresh = new Map();
    let newest = '0';
    for (const msg of data.messages || []) {
      if (!isTopLevel(msg)) continue;
      fresh.set(msg.ts, msg);
      this.seen.add(`${id}:${msg.ts}`);
      if (compareTs(msg.ts, newest) > 0) newest = msg.ts;
    }
    // keep what arrived over SSE while the request was in flight
    for (const [ts, msg] of entry.messages) if (!fresh.has(ts) && compareTs(ts, newest) > 0) fresh.set(ts, msg);
    entry.messages = fresh;
    entry.loaded = true;
    if (this.isShowing(id)) this.showChannel({ toBottom: toBottom || this.list.nearBottom() });
  }

  isShowing(channel) {
    return Boolean(this.current && this.current.kind === 'channel' && this.current.id === channel);
  }

  showChannel({ toBottom }) {
    const entry = this.entry(this.current.id);
    const top = this.scroller.scrollTop;
    const ephemerals = [...entry.ephemerals.values()].filter(isTopLevel);
    this.list.set([...entry.messages.values(), ...ephemerals], { toBottom });
    if (!toBottom) this.scroller.scrollTop = top;
    this.updatePinned();
  }

  updatePinned() {
    const pinned = this.list.messages.filter((m) => m.pinned && !m.ephemeral);
    this.pinnedBar.hidden = !pinned.length;
    if (!pinned.length) return;
    const msg = pinned[this.pinnedIndex % pinned.length];
    const preview = mrkdwnToText(msg.text || '').replace(/\s+/g, ' ').trim().slice(0, 120) || 'Pinned message';
    clear(this.pinnedBar);
    append(this.pinnedBar, [el('span', { class: 'pin-icon', text: '📌' }),
      el('span', { class: 'pin-text', text: preview }),
      pinned.length > 1 ? el('span', { class: 'pin-count', text: `${pinned.length} pinned` }) : null]);
    this.pinnedBar.dataset.ts = msg.ts;
  }

  revealPinned() {
    const pinned = this.list.messages.filter((m) => m.pinned && !m.ephemeral);
    if (!pinned.length) return;
    this.list.reveal(pinned[this.pinnedIndex % pinned.length].ts);
    this.pinnedIndex = (this.pinnedIndex + 1) % pinned.length;
    this.updatePinned();
  }

  // ---------------------------------------------------------------- threads

  async openThread(channel, ts) {
    if (this.thread && this.thread.channel === channel && this.thread.ts === ts) {
      this.threadComposer.focus();
      return;
    }
    this.closeThread();
    clear(this.threadScroller);
    const list = new MessageList({
      scroller: this.threadScroller,
      mode: 'thread',
      onAction: (msg, action) => this.messageAction(msg, action),
      onDismiss: (msg) => this.dismiss(msg),
    });
    this.thread = { channel, ts, list };
    const info = directory.channels.get(channel);
    clear(this.threadTitle);
    this.threadTitle.append(el('b', { text: 'Thread' }), el('span', { class: 'ws-thread-channel', text: info ? (info.is_im ? info.name : `#${info.name}`) : '' }));
    this.threadPane.hidden = false;
    this.threadPane.dataset.threadTs = ts;
    this.wsNode.classList.add('thread-open');
    await this.loadThread();
    this.threadComposer.focus();
  }

  async loadThread() {
    const thread = this.thread;
    if (!thread) return;
    let data;
    try {
      data = await uiApi('GET', `/channels/${encodeURIComponent(thread.channel)}/threads/${encodeURIComponent(thread.ts)}`);
    } catch (error) {
      toast(`Could not load the thread: ${error.message}`, { kind: 'error' });
      return;
    }
    if (this.thread !== thread) return;
    const seenBefore = new Map(thread.list.messages.map((m) => [messageKey(m), m]));
    const messages = data.messages || [];
    for (const msg of messages) this.seen.add(`${thread.channel}:${msg.ts}`);
    const fetched = new Set(messages.map((m) => m.ts));
    const kept = [...seenBefore.values()].filter((m) => !m.ephemeral && !fetched.has(m.ts) && compareTs(m.ts, messages.length ? messages[messages.length - 1].ts : '0') > 0);
    const ephemerals = [...this.entry(thread.channel).ephemerals.values()].filter((m) => m.thread_ts === thread.ts && m.ts !== thread.ts);
    thread.list.set([...messages, ...kept, ...ephemerals], { toBottom: !seenBefore.size || thread.list.nearBottom() });
  }

  closeThread() {
    this.thread = null;
    this.threadPane.hidden = true;
    delete this.threadPane.dataset.threadTs;
    if (this.wsNode) this.wsNode.classList.remove('thread-open');
  }

  // ---------------------------------------------------------------- sending and actions

  async send({ text, command }, thread) {
    if (!this.current || this.current.kind !== 'channel') throw new Error('Open a channel first.');
    const channel = thread ? thread.channel : this.current.id;
    const threadTs = thread ? thread.ts : undefined;
    if (command) {
      const answer = await uiApi('POST', '/commands', { channel, text, ...(threadTs ? { thread_ts: threadTs } : {}) });
      if (answer.response) this.addLocalEphemeral(channel, threadTs, answer.response);
      return;
    }
    const answer = await uiApi('POST', `/channels/${encodeURIComponent(channel)}/messages`, { text, ...(threadTs ? { thread_ts: threadTs } : {}) });
    if (answer.ts) {
      // the message normally arrives over SSE at once; fetch it if it did not
      setTimeout(() => {
        if (this.seen.has(`${channel}:${answer.ts}`)) return;
        if (thread && this.thread === thread) this.loadThread();
        else if (this.isShowing(channel)) this.loadChannel(channel);
      }, 1500);
    }
  }

  addLocalEphemeral(channel, threadTs, response) {
    const bot = directory.bot || {};
    this.onEphemeral({
      channel, ts: localTs(), thread_ts: threadTs || null, user: bot.user_id, user_name: bot.name || 'IncidentFox', is_bot: true,
      text: response.text || '', blocks: response.blocks || [], ephemeral: true, edited: false, pinned: false, reply_count: 0, latest_reply: null,
    });
  }

  unknownCommand(word, thread) {
    this.addLocalEphemeral(thread ? thread.channel : this.current.id, thread ? thread.ts : null, {
      text: `\`${word}\` is not a valid command. In this workspace, the command is \`/incidentfox\`; try \`/incidentfox help\`.`,
    });
  }

  messageAction(msg, action) {
    const container = { type: 'message', channel: msg.channel, ts: msg.ts };
    if (msg.ephemeral) container.is_ephemeral = true;
    if (msg.thread_ts) container.thread_ts = msg.thread_ts;
    return this.sendAction(container, action);
  }

  async sendAction(container, action) {
    try {
      await uiApi('POST', '/actions', { container, ...action });
    } catch (error) {
      toast(error.message, { kind: 'error' });
    }
  }

  dismiss(msg) {
    this.entry(msg.channel).ephemerals.delete(msg.ts);
    this.list.remove(msg.ts, { ephemeral: true });
    if (this.thread) this.thread.list.remove(msg.ts, { ephemeral: true });
  }

  async runDemo(action, button) {
    button.disabled = true;
    try {
      const answer = await uiApi('POST', `/demo/${encodeURIComponent(action.id)}`);
      toast(answer.message || `${action.label || action.id}: started.`);
    } catch (error) {
      toast(error.message, { kind: 'error' });
    } finally {
      button.disabled = false;
    }
  }

  // ---------------------------------------------------------------- server events

  onMessage(msg) {
    if (!msg || !msg.channel || !msg.ts) return;
    if (msg.ephemeral) { this.onEphemeral(msg); return; }
    const key = `${msg.channel}:${msg.ts}`;
    const isNew = !this.seen.has(key) && !msg.edited;
    this.seen.add(key);
    const entry = this.entry(msg.channel);
    if (isTopLevel(msg)) {
      entry.messages.set(msg.ts, msg);
      if (this.isShowing(msg.channel)) {
        this.list.upsert(msg);
        this.updatePinned();
      } else if (isNew && !(directory.me && msg.user === directory.me.id)) {
        this.unread.set(msg.channel, (this.unread.get(msg.channel) || 0) + 1);
        this.renderSidebar();
      }
      if (this.thread && this.thread.channel === msg.channel && this.thread.ts === msg.ts) this.thread.list.upsert(msg);
      return;
    }
    if (this.thread && this.thread.channel === msg.channel && this.thread.ts === msg.thread_ts) this.thread.list.upsert(msg);
    if (isNew) this.bumpParent(msg.channel, msg.thread_ts, msg.ts, +1);
  }

  bumpParent(channel, parentTs, replyTs, delta) {
    const entry = this.entry(channel);
    const parent = entry.messages.get(parentTs);
    if (!parent) return;
    if (delta > 0 && parent.latest_reply && compareTs(parent.latest_reply, replyTs) >= 0) return; // already counted
    const updated = { ...parent, reply_count: Math.max(0, (parent.reply_count || 0) + delta) };
    if (delta > 0) updated.latest_reply = replyTs;
    if (!updated.thread_ts) updated.thread_ts = parentTs;
    entry.messages.set(parentTs, updated);
    if (this.isShowing(channel)) this.list.upsert(updated);
    if (this.thread && this.thread.channel === channel && this.thread.ts === parentTs) this.thread.list.upsert(updated);
  }

  onDeleted({ channel, ts } = {}) {
    if (!channel || !ts) return;
    const entry = this.entry(channel);
    const wasTop = entry.messages.delete(ts);
    if (this.isShowing(channel)) { this.list.remove(ts); this.updatePinned(); }
    if (this.thread && this.thread.channel === channel) {
      if (this.thread.ts === ts) this.closeThread();
      else if (this.thread.list.remove(ts) && !wasTop) this.bumpParent(channel, this.thread.ts, ts, -1);
    }
  }

  onEphemeral(msg) {
    if (!msg || !msg.channel || !msg.ts) return;
    const shown = { ...msg, ephemeral: true };
    this.entry(msg.channel).ephemerals.set(msg.ts, shown);
    const inThread = msg.thread_ts && msg.thread_ts !== msg.ts;
    if (inThread) {
      if (this.thread && this.thread.channel === msg.channel && this.thread.ts === msg.thread_ts) this.thread.list.upsert(shown);
      else if (this.isShowing(msg.channel)) this.openThread(msg.channel, msg.thread_ts);
    } else if (this.isShowing(msg.channel)) {
      this.list.keepBottom(() => this.list.upsert(shown), true);
    }
  }

  onView({ action, view } = {}) {
    if (!view) return;
    if (action === 'publish' || view.type === 'home') this.home.publish(view);
    else this.modals.apply(action, view);
  }

  onChannel(channel) {
    if (!channel || !channel.id) return;
    addChannel(channel);
    this.renderSidebar();
    if (this.isShowing(channel.id)) this.topicNode.textContent = channel.topic || '';
  }

  /** After a reconnect: fetch what may have been missed. */
  resync() {
    if (this.current && this.current.kind === 'channel') this.loadChannel(this.current.id);
    if (this.thread) this.loadThread();
    if (this.current && this.current.kind === 'home') this.home.refresh();
  }
}
