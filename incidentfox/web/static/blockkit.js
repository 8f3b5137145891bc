// Block Kit -> DOM. Layout blocks here, interactive widgets in bk_inputs.js.
//
// ctx: {
//   surface: 'message' | 'modal' | 'home',
//   onAction(action) -> Promise   // action: {type, action_id, block_id, value?, selected_option?, ...}
//   widgets: []                    // filled with {blockId, actionId, widget, input, optional, dispatch}
// }

import { el, confirmDialog, openUrl, safeUrl, link } from './ui.js';
import { plainText, renderMrkdwn, renderTextObject } from './mrkdwn.js';
import { emojify } from './emoji.js';
import { channelName, directory, userHandle } from './directory.js';
import { createWidget, isEmptyState } from './bk_inputs.js';

export function renderBlocks(blocks, ctx = {}) {
  ctx.widgets = ctx.widgets || [];
  const root = el('div', { class: `bk bk-${ctx.surface || 'message'}` });
  (Array.isArray(blocks) ? blocks : []).forEach((block, index) => {
    let node;
    try {
      node = renderBlock(block || {}, index, ctx);
    } catch (error) {
      console.error('Block Kit render failed', block, error);
      node = unsupported(`block: ${(block && block.type) || 'unknown'} (${error.message})`);
    }
    root.append(node);
  });
  return root;
}

export function unsupported(what) {
  return el('div', { class: 'bk-unsupported', 'data-testid': 'bk-unsupported', text: `Unsupported ${what}` });
}

function blockIdOf(block, index) {
  return block.block_id || `block-${index}`;
}

function renderBlock(block, index, ctx) {
  const blockId = blockIdOf(block, index);
  switch (block.type) {
    case 'section': return section(block, blockId, ctx);
    case 'header': return el('div', { class: 'bk-header', 'data-block-id': blockId, role: 'heading', 'aria-level': '2', text: plainText(block.text) });
    case 'context': return context(block, blockId);
    case 'divider': return el('hr', { class: 'bk-divider' });
    case 'actions': return actions(block, blockId, ctx);
    case 'image': return imageBlock(block, blockId);
    case 'rich_text': return richText(block, blockId);
    case 'input': return inputBlock(block, blockId, ctx);
    case 'markdown': return el('div', { class: 'bk-markdown', 'data-block-id': blockId }, renderMrkdwn(block.text || '', { markdown: true }));
    case 'file': return fileBlock(block, blockId);
    case 'video': return videoBlock(block, blockId);
    default: return unsupported(`block: ${block.type || 'unknown'}`);
  }
}

// ---------------------------------------------------------------- layout blocks

function section(block, blockId, ctx) {
  const main = el('div', { class: 'bk-section-main' });
  if (block.text) main.append(el('div', { class: 'bk-section-text' }, renderTextObject(block.text)));
  if (Array.isArray(block.fields) && block.fields.length) {
    main.append(el('div', { class: 'bk-fields' }, block.fields.map((field) => el('div', { class: 'bk-field' }, renderTextObject(field)))));
  }
  const node = el('div', { class: 'bk-section', 'data-block-id': blockId }, main);
  if (block.accessory) {
    node.append(el('div', { class: 'bk-accessory' }, interactive(block.accessory, blockId, ctx, true)));
  }
  return node;
}

function context(block, blockId) {
  const node = el('div', { class: 'bk-context', 'data-block-id': blockId });
  for (const element of block.elements || []) {
    if (element.type === 'image') node.append(image(element.image_url, element.alt_text, 'bk-context-image'));
    else node.append(el('span', { class: 'bk-context-item' }, renderTextObject(element, { inline: true })));
  }
  return node;
}

function actions(block, blockId, ctx) {
  return el('div', { class: 'bk-actions', 'data-block-id': blockId },
    (block.elements || []).map((element) => interactive(element, blockId, ctx, false)));
}

function image(url, alt, className) {
  const src = safeUrl(url);
  if (!src || src.startsWith('mailto:')) return el('span', { class: `${className} bk-image-missing`, text: alt || 'image' });
  return el('img', { class: className, src, alt: alt || '', loading: 'lazy', referrerPolicy: 'no-referrer' });
}

function imageBlock(block, blockId) {
  const url = block.image_url || (block.slack_file && block.slack_file.url);
  return el('figure', { class: 'bk-image', 'data-block-id': blockId },
    block.title ? el('figcaption', { class: 'bk-image-title', text: plainText(block.title) }) : null,
    image(url, block.alt_text, 'bk-image-img'));
}

function fileBlock(block, blockId) {
  const label = `📎 File ${block.external_id || ''}`.trim();
  return el('div', { class: 'bk-file', 'data-block-id': blockId, 'data-testid': 'bk-file' },
    block.url ? link(block.url, label) : el('span', { text: `${label} (files are not shown in the local workspace)` }));
}

function videoBlock(block, blockId) {
  const title = plainText(block.title) || 'Video';
  return el('div', { class: 'bk-file', 'data-block-id': blockId, 'data-testid': 'bk-video' },
    link(block.title_url || block.video_url, `▶️ ${title}`),
    block.description ? el('div', { class: 'bk-context' }, renderTextObject(block.description)) : null);
}

// ---------------------------------------------------------------- interactive elements

function interactive(element, blockId, ctx, accessory) {
  switch (element.type) {
    case 'button':
    case 'workflow_button':
      return button(element, blockId, ctx);
    case 'overflow':
      return overflow(element, blockId, ctx);
    case 'image':
      return image(element.image_url, element.alt_text, accessory ? 'bk-accessory-image' : 'bk-context-image');
    default: {
      const widget = createWidget(element, {
        onChange: () => ctx.onAction && ctx.onAction({ ...actionFields(widget.getState()), action_id: element.action_id || '', block_id: blockId }),
      });
      if (!widget) return unsupported(`element: ${element.type || 'unknown'}`);
      ctx.widgets.push({ blockId, actionId: element.action_id || '', widget, input: false });
      return el('span', { class: 'bk-interactive' }, widget.node);
    }
  }
}

function button(element, blockId, ctx) {
  const style = element.style === 'primary' || element.style === 'danger' ? ` bk-btn-${element.style}` : '';
  const node = el('button', {
    type: 'button',
    class: `bk-btn${style}`,
    'data-testid': 'bk-button',
    'data-action-id': element.action_id || '',
    'data-block-id': blockId,
    text: plainText(element.text) || 'Button',
  });
  if (element.accessibility_label) node.setAttribute('aria-label', element.accessibility_label);
  node.addEventListener('click', async () => {
    if (element.confirm && !(await confirmFromSlack(element.confirm, element.style === 'danger'))) return;
    if (element.url) openUrl(element.url);
    const payload = { type: element.type, action_id: element.action_id || '', block_id: blockId };
    if (element.value !== undefined) payload.value = element.value;
    await runAction(node, ctx, payload);
  });
  return node;
}

function overflow(element, blockId, ctx) {
  const trigger = el('button', { type: 'button', class: 'bk-btn bk-overflow', 'aria-label': 'More actions', 'aria-haspopup': 'menu', 'data-action-id': element.action_id || '', 'data-testid': 'bk-overflow', text: '⋯' });
  const menu = el('div', { class: 'bk-menu', role: 'menu', hidden: true });
  const wrap = el('span', { class: 'bk-overflow-wrap' }, trigger, menu);
  const close = () => { menu.hidden = true; document.removeEventListener('click', outside, true); };
  const outside = (event) => { if (!wrap.contains(event.target)) close(); };
  for (const option of element.options || []) {
    menu.append(el('button', {
      type: 'button', class: 'bk-menu-item', role: 'menuitem', 'data-value': option.value, text: plainText(option.text),
      onclick: async () => {
        close();
        if (element.confirm && !(await confirmFromSlack(element.confirm, false))) return;
        if (option.url) openUrl(option.url);
        await runAction(trigger, ctx, { type: 'overflow', action_id: element.action_id || '', block_id: blockId, selected_option: plainOption(option) });
      },
    }));
  }
  trigger.addEventListener('click', () => {
    if (menu.hidden) { menu.hidden = false; document.addEventListener('click', outside, true); } else close();
  });
  return wrap;
}

/** An option as the actions API takes it: {value, text} with text as a plain string. */
function plainOption(option) {
  return option ? { value: option.value, text: plainText(option.text) } : null;
}

/**
 * A widget's state as an action payload: options with plain-text labels, and a `value` carrying a
 * picker's single choice (user, conversation, channel, date, time) for servers that read only that.
 */
export function actionFields(state) {
  const out = { ...state };
  if ('selected_option' in state) out.selected_option = plainOption(state.selected_option);
  if (Array.isArray(state.selected_options)) out.selected_options = state.selected_options.map(plainOption);
  const single = ['selected_user', 'selected_conversation', 'selected_channel', 'selected_date', 'selected_time']
    .map((key) => state[key]).find((choice) => choice !== undefined && choice !== null);
  if (single !== undefined && out.value === undefined) out.value = String(single);
  return out;
}

async function runAction(node, ctx, payload) {
  if (!ctx.onAction) return;
  node.disabled = true;
  node.classList.add('busy');
  try {
    await ctx.onAction(payload);
  } finally {
    node.disabled = false;
    node.classList.remove('busy');
  }
}

function confirmFromSlack(confirm, danger) {
  return confirmDialog({
    title: plainText(confirm.title) || 'Are you sure?',
    body: confirm.text ? renderTextObject(confirm.text) : '',
    confirmText: plainText(confirm.confirm) || 'Yes',
    denyText: plainText(confirm.deny) || 'Cancel',
    danger: confirm.style === 'danger' || danger,
  });
}

// ---------------------------------------------------------------- input blocks (modals)

let inputCounter = 0;

function inputBlock(block, blockId, ctx) {
  const element = block.element || {};
  const id = `bk-input-${++inputCounter}`;
  const actionId = element.action_id || `${blockId}-action`;
  const widget = createWidget(element, {
    id,
    onChange: () => {
      if (block.dispatch_action && ctx.onAction) ctx.onAction({ ...actionFields(widget.getState()), action_id: actionId, block_id: blockId });
    },
  });
  const label = el('label', { class: 'bk-label', for: id }, plainText(block.label) || '',
    block.optional ? el('span', { class: 'bk-optional', text: ' (optional)' }) : null);
  const node = el('div', { class: 'bk-input', 'data-block-id': blockId }, label);
  if (!widget) {
    node.append(unsupported(`element: ${element.type || 'unknown'}`));
  } else {
    node.append(widget.node);
    ctx.widgets.push({ blockId, actionId, widget, input: true, optional: Boolean(block.optional), node });
  }
  if (block.hint) node.append(el('div', { class: 'bk-hint', text: plainText(block.hint) }));
  return node;
}

/** view.state.values from every widget a render registered. */
export function collectValues(widgets) {
  const values = {};
  for (const { blockId, actionId, widget } of widgets) {
    values[blockId] = values[blockId] || {};
    values[blockId][actionId] = widget.getState();
  }
  return values;
}

/** Client-side checks Slack makes before submitting: required fields and input formats. */
export function validateInputs(widgets) {
  const errors = {};
  for (const entry of widgets) {
    if (!entry.input) continue;
    const state = entry.widget.getState();
    if (!entry.optional && isEmptyState(state)) errors[entry.blockId] = 'Please complete this required field.';
    else {
      const message = entry.widget.validate && entry.widget.validate();
      if (message) errors[entry.blockId] = message;
    }
  }
  return errors;
}

/** Show errors ({block_id: message}) under their input blocks; returns messages with no block to sit under. */
export function showFieldErrors(root, errors) {
  for (const old of root.querySelectorAll('[data-testid="field-error"]')) old.remove();
  for (const marked of root.querySelectorAll('.bk-input.has-error')) marked.classList.remove('has-error');
  const orphans = [];
  for (const [blockId, message] of Object.entries(errors || {})) {
    const block = [...root.querySelectorAll('.bk-input, .bk-section, .bk-actions')].find((node) => node.dataset.blockId === blockId);
    const text = typeof message === 'string' ? message : JSON.stringify(message);
    if (!block) { orphans.push(text); continue; }
    block.classList.add('has-error');
    block.append(el('div', { class: 'field-error', 'data-testid': 'field-error', 'data-block-id': blockId, role: 'alert', text }));
  }
  return orphans;
}

// ---------------------------------------------------------------- rich text

function richText(block, blockId) {
  const node = el('div', { class: 'bk-rich', 'data-block-id': blockId });
  for (const element of block.elements || []) node.append(richElement(element));
  return node;
}

function richElement(element) {
  switch (element.type) {
    case 'rich_text_section':
      return el('div', { class: 'rt-section' }, richInline(element.elements));
    case 'rich_text_preformatted':
      return el('pre', { class: 'mrk-pre' }, richInline(element.elements, true));
    case 'rich_text_quote':
      return el('blockquote', { class: 'mrk-quote' }, richInline(element.elements));
    case 'rich_text_list': {
      const ordered = element.style === 'ordered';
      const list = el(ordered ? 'ol' : 'ul', { class: `rt-list rt-indent-${element.indent || 0}` });
      if (ordered && element.offset) list.start = element.offset + 1;
      list.style.marginLeft = `${(element.indent || 0) * 1.5}em`;
      if (!ordered) list.style.listStyleType = ['disc', 'circle', 'square'][(element.indent || 0) % 3];
      for (const item of element.elements || []) list.append(el('li', {}, richInline(item.elements)));
      return list;
    }
    default:
      return unsupported(`rich text element: ${element.type || 'unknown'}`);
  }
}

function richInline(elements, preformatted = false) {
  const frag = document.createDocumentFragment();
  for (const item of elements || []) frag.append(styled(richLeaf(item, preformatted), preformatted ? null : item.style));
  return frag;
}

function richLeaf(item, preformatted) {
  switch (item.type) {
    case 'text': return document.createTextNode(preformatted ? String(item.text ?? '') : emojify(String(item.text ?? '')));
    case 'link': return link(item.url, item.text || item.url);
    case 'user': return el('span', { class: directory.me && directory.me.id === item.user_id ? 'mention mention-me' : 'mention', text: '@' + userHandle(item.user_id) });
    case 'usergroup': return el('span', { class: 'mention', text: '@' + item.usergroup_id });
    case 'channel': return el('span', { class: 'mention mention-channel', text: '#' + (channelName(item.channel_id) || item.channel_id) });
    case 'broadcast': return el('span', { class: 'mention mention-special', text: '@' + (item.range || 'here') });
    case 'emoji': return document.createTextNode(emojiChar(item));
    case 'date': return document.createTextNode(item.fallback || new Date((item.timestamp || 0) * 1000).toLocaleString());
    case 'color': return el('span', { class: 'rt-color' }, el('span', { class: 'rt-swatch', style: `background:${/^#[0-9a-f]{3,8}$/i.test(item.value) ? item.value : 'transparent'}` }), item.value || '');
    default: return unsupported(`rich text: ${item.type || 'unknown'}`);
  }
}

function emojiChar(item) {
  if (item.unicode && /^[0-9a-f-]+$/i.test(item.unicode)) {
    try { return String.fromCodePoint(...item.unicode.split('-').map((hex) => parseInt(hex, 16))); } catch { /* fall through */ }
  }
  return emojify(`:${item.name}:`);
}

function styled(node, style) {
  if (!style) return node;
  let out = node;
  if (style.code) out = el('code', { class: 'mrk-code' }, out);
  if (style.strike) out = el('s', {}, out);
  if (style.italic) out = el('i', {}, out);
  if (style.bold) out = el('b', {}, out);
  return out;
}
