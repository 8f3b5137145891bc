// Slack mrkdwn: a pure parser (text -> tokens) and a DOM builder that only ever creates text nodes.
//
// Block tokens:  {type: 'pre', text} | {type: 'line', kind: 'plain'|'quote'|'bullet'|'numbered'|'heading',
//                 marker?, indent, children}
// Inline tokens: {type: 'text', text} | {type: 'bold'|'italic'|'strike', children} | {type: 'code', text}
//                | {type: 'link', url, label} | {type: 'user', id, label?} | {type: 'channel', id, label?}
//                | {type: 'special', name} | {type: 'usergroup', id, label?} | {type: 'date', text}

import { emojify } from './emoji.js';
import { el, safeUrl } from './ui.js';
import { channelName, directory, userHandle } from './directory.js';

const PUA = 0xe000; // private-use code points stand in for atoms while emphasis is parsed
const PUA_END = 0xf8ff;
const ENTITIES = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'", '&apos;': "'" };

export function decodeEntities(text) {
  return text.replace(/&(amp|lt|gt|quot|#39|apos);/g, (entity) => ENTITIES[entity]);
}

const MRKDWN_MARKS = [['*', 'bold'], ['_', 'italic'], ['~', 'strike']];
const MARKDOWN_MARKS = [['**', 'bold'], ['__', 'bold'], ['~~', 'strike'], ['*', 'italic'], ['_', 'italic'], ['~', 'strike']];
const WORD = /[\p{L}\p{N}]/u;
const SPACE = /\s/;

/** Parse mrkdwn (or, with {markdown: true}, standard markdown) into block tokens. */
export function parseMrkdwn(text, { markdown = false, emoji = true } = {}) {
  const options = { markdown, emoji };
  const source = String(text ?? '').replace(/\r\n?/g, '\n');
  const parts = source.split('```');
  if (parts.length % 2 === 0) {
    // an unmatched fence is literal text
    const last = parts.pop();
    parts[parts.length - 1] += '```' + last;
  }
  const blocks = [];
  parts.forEach((part, index) => {
    if (index % 2 === 1) {
      blocks.push({ type: 'pre', text: decodeEntities(part.replace(/^\n/, '').replace(/\n$/, '')) });
      return;
    }
    let chunk = part;
    if (index > 0) chunk = chunk.replace(/^\n/, '');
    if (index < parts.length - 1) chunk = chunk.replace(/\n$/, '');
    if (chunk === '' && parts.length > 1) return;
    parseLines(chunk, options, blocks);
  });
  return blocks;
}

function parseLines(chunk, options, blocks) {
  let quoteRest = false;
  for (const raw of chunk.split('\n')) {
    let line = raw;
    let kind = 'plain';
    let marker;
    let indent = 0;
    if (!quoteRest && /^(&gt;|>){3}/.test(line)) {
      quoteRest = true;
      line = line.replace(/^(&gt;|>){3}\s?/, '');
    }
    let match;
    if (quoteRest) kind = 'quote';
    else if ((match = /^(?:&gt;|>) ?(.*)$/.exec(line))) {
      kind = 'quote';
      line = match[1];
    }
    if (kind !== 'quote') {
      if ((match = /^([ \t]*)([•◦▪‣*-])[ \t]+(.*)$/.exec(line))) {
        kind = 'bullet';
        indent = indentOf(match[1]);
        marker = match[2] === '-' || match[2] === '*' ? '•' : match[2];
        line = match[3];
      } else if ((match = /^([ \t]*)(\d{1,3}[.)])[ \t]+(.*)$/.exec(line))) {
        kind = 'numbered';
        indent = indentOf(match[1]);
        marker = match[2];
        line = match[3];
      } else if (options.markdown && (match = /^#{1,6}[ \t]+(.*)$/.exec(line))) {
        kind = 'heading';
        line = match[1];
      }
    }
    const token = { type: 'line', kind, indent, children: parseInline(line, options) };
    if (marker) token.marker = marker;
    blocks.push(token);
  }
}

function indentOf(spaces) {
  let width = 0;
  for (const ch of spaces) width += ch === '\t' ? 4 : 1;
  return Math.min(4, Math.floor(width / 2));
}

/** Inline tokens of one line. */
export function parseInline(line, options = {}) {
  const atoms = [];
  let masked = '';
  let i = 0;
  const addAtom = (atom) => {
    if (PUA + atoms.length > PUA_END) return false;
    masked += String.fromCharCode(PUA + atoms.length);
    atoms.push(atom);
    return true;
  };
  while (i < line.length) {
    const ch = line[i];
    const code = line.charCodeAt(i);
    if (code >= PUA && code <= PUA_END) {
      addAtom({ type: 'text', text: ch });
      i += 1;
      continue;
    }
    if (ch === '`') {
      const end = line.indexOf('`', i + 1);
      if (end > i + 1 && addAtom({ type: 'code', text: decodeEntities(line.slice(i + 1, end)) })) {
        i = end + 1;
        continue;
      }
    } else if (ch === '<') {
      const end = line.indexOf('>', i + 1);
      const inner = end > i ? line.slice(i + 1, end) : '';
      const atom = inner && inner.indexOf('<') < 0 ? angleToken(inner) : null;
      if (atom && addAtom(atom)) {
        i = end + 1;
        continue;
      }
    } else if (options.markdown && ch === '[') {
      const match = /^\[([^\]\n]+)\]\(([^)\s]+)\)/.exec(line.slice(i));
      if (match && safeUrl(match[2]) && addAtom({ type: 'link', url: match[2], label: decodeEntities(match[1]) })) {
        i += match[0].length;
        continue;
      }
    } else if ((ch === 'h' || ch === 'H') && (i === 0 || !WORD.test(line[i - 1]))) {
      const match = /^https?:\/\/[^\s<>`]+/i.exec(line.slice(i));
      if (match) {
        const url = match[0].replace(/[.,;:!?)\]'"*_~]+$/, '');
        if (url.length > 8 && addAtom({ type: 'link', url: decodeEntities(url), label: decodeEntities(url) })) {
          i += url.length;
          continue;
        }
      }
    }
    masked += ch;
    i += 1;
  }
  return parseSpans(masked, atoms, options.markdown ? MARKDOWN_MARKS : MRKDWN_MARKS, options.emoji !== false);
}

/** The meaning of a Slack <...> token, or null when it is just text between angle brackets. */
function angleToken(inner) {
  const bar = inner.indexOf('|');
  const target = bar >= 0 ? inner.slice(0, bar) : inner;
  const label = bar >= 0 ? decodeEntities(inner.slice(bar + 1)) : null;
  let match;
  if ((match = /^@([UWB][A-Z0-9]+)$/.exec(target))) return { type: 'user', id: match[1], label };
  if ((match = /^#(C[A-Z0-9]+|G[A-Z0-9]+|D[A-Z0-9]+)$/.exec(target))) return { type: 'channel', id: match[1], label };
  if ((match = /^!(here|channel|everyone)$/.exec(target))) return { type: 'special', name: match[1] };
  if ((match = /^!subteam\^([A-Z0-9]+)$/.exec(target))) return { type: 'usergroup', id: match[1], label };
  if (/^!date\^/.test(target)) return { type: 'date', text: label || decodeEntities(target) };
  const url = decodeEntities(target);
  if (safeUrl(url)) return { type: 'link', url, label: label || url.replace(/^mailto:/i, '') };
  if (/^[a-z][a-z0-9+.-]*:/i.test(url)) return { type: 'text', text: label || url }; // an unsafe scheme: no link
  return null;
}

function parseSpans(s, atoms, marks, emoji) {
  const out = [];
  let buffer = '';
  const flush = () => {
    if (buffer) {
      pushText(out, buffer, emoji);
      buffer = '';
    }
  };
  let i = 0;
  while (i < s.length) {
    const code = s.charCodeAt(i);
    if (code >= PUA && code < PUA + atoms.length) {
      flush();
      const atom = atoms[code - PUA];
      if (atom.type === 'text') pushText(out, atom.text, false, true);
      else out.push(atom);
      i += 1;
      continue;
    }
    let matched = false;
    for (const [mark, kind] of marks) {
      if (!s.startsWith(mark, i) || !canOpen(s, i, mark)) continue;
      const end = findClose(s, i, mark);
      if (end < 0) continue;
      flush();
      out.push({ type: kind, children: parseSpans(s.slice(i + mark.length, end), atoms, marks, emoji) });
      i = end + mark.length;
      matched = true;
      break;
    }
    if (matched) continue;
    buffer += s[i];
    i += 1;
  }
  flush();
  return out;
}

function isWord(ch) {
  if (ch === undefined) return false;
  const code = ch.charCodeAt(0);
  if (code >= PUA && code <= PUA_END) return false;
  return WORD.test(ch);
}

function canOpen(s, i, mark) {
  const before = s[i - 1];
  const after = s[i + mark.length];
  if (isWord(before) || before === mark[0]) return false;
  return after !== undefined && !SPACE.test(after) && after !== mark[0];
}

function findClose(s, i, mark) {
  let j = s.indexOf(mark, i + mark.length + 1);
  while (j >= 0) {
    const before = s[j - 1];
    const after = s[j + mark.length];
    if (!SPACE.test(before) && before !== mark[0] && !isWord(after) && after !== mark[0]) return j;
    j = s.indexOf(mark, j + 1);
  }
  return -1;
}

function pushText(out, text, emoji, raw = false) {
  let value = raw ? text : decodeEntities(text);
  if (emoji) value = emojify(value);
  const last = out[out.length - 1];
  if (last && last.type === 'text') last.text += value;
  else out.push({ type: 'text', text: value });
}

/** Plain text a token list reads as (for previews and accessible labels). */
export function tokensToText(tokens) {
  return tokens.map((token) => {
    if (token.type === 'pre') return token.text;
    if (token.type === 'line') return inlineText(token.children);
    return '';
  }).join('\n');
}

function inlineText(children) {
  return children.map((token) => {
    switch (token.type) {
      case 'text': case 'code': case 'date': return token.text;
      case 'link': return token.label;
      case 'user': return '@' + (token.label || userHandle(token.id));
      case 'channel': return '#' + (channelName(token.id) || token.label || token.id);
      case 'special': return '@' + token.name;
      case 'usergroup': return token.label || '@' + token.id;
      default: return token.children ? inlineText(token.children) : '';
    }
  }).join('');
}

export function mrkdwnToText(text, options) {
  return tokensToText(parseMrkdwn(text, options));
}

// ---------------------------------------------------------------- DOM

/** A <div class="mrkdwn"> for text; options: {markdown, emoji, inline}. */
export function renderMrkdwn(text, options = {}) {
  const root = el(options.inline ? 'span' : 'div', { class: 'mrkdwn' });
  let quote = null;
  for (const block of parseMrkdwn(text, options)) {
    if (block.type === 'pre') {
      quote = null;
      root.append(el('pre', { class: 'mrk-pre', text: block.text }));
      continue;
    }
    const line = renderLine(block);
    if (block.kind === 'quote') {
      if (!quote) {
        quote = el('blockquote', { class: 'mrk-quote' });
        root.append(quote);
      }
      quote.append(line);
    } else {
      quote = null;
      root.append(line);
    }
  }
  return root;
}

function renderLine(block) {
  const content = renderInline(block.children);
  if (block.kind === 'bullet' || block.kind === 'numbered') {
    const node = el('div', { class: `mrk-li mrk-${block.kind}` }, el('span', { class: 'mrk-marker', text: block.marker }), el('span', { class: 'mrk-li-body' }, content));
    node.style.marginLeft = `${block.indent * 1.25}em`;
    return node;
  }
  const node = el('div', { class: block.kind === 'heading' ? 'mrk-line mrk-heading' : 'mrk-line' }, content);
  if (!block.children.length) node.append(el('br'));
  return node;
}

export function renderInline(children) {
  const frag = document.createDocumentFragment();
  for (const token of children) frag.append(renderToken(token));
  return frag;
}

function renderToken(token) {
  switch (token.type) {
    case 'text': return document.createTextNode(token.text);
    case 'bold': return el('b', {}, renderInline(token.children));
    case 'italic': return el('i', {}, renderInline(token.children));
    case 'strike': return el('s', {}, renderInline(token.children));
    case 'code': return el('code', { class: 'mrk-code', text: token.text });
    case 'date': return document.createTextNode(token.text);
    case 'link': {
      const href = safeUrl(token.url);
      return href ? el('a', { href, target: '_blank', rel: 'noopener noreferrer', text: token.label }) : document.createTextNode(token.label);
    }
    case 'user': {
      const isMe = directory.me && token.id === directory.me.id;
      const known = directory.users.has(token.id) || (directory.bot && directory.bot.user_id === token.id);
      const name = known ? userHandle(token.id) : token.label || token.id;
      return el('span', { class: isMe ? 'mention mention-me' : 'mention', 'data-user-id': token.id, text: '@' + name });
    }
    case 'channel': return el('span', { class: 'mention mention-channel', 'data-channel-id': token.id, text: '#' + (channelName(token.id) || token.label || token.id) });
    case 'special': return el('span', { class: 'mention mention-special', text: '@' + token.name });
    case 'usergroup': return el('span', { class: 'mention', text: token.label ? (token.label.startsWith('@') ? token.label : '@' + token.label) : '@' + token.id });
    default: return document.createTextNode('');
  }
}

/** A Block Kit text object as DOM: plain_text (emoji flag honoured) or mrkdwn. */
export function renderTextObject(object, { inline = false } = {}) {
  if (!object) return document.createTextNode('');
  if (typeof object === 'string') return document.createTextNode(emojify(object));
  if (object.type === 'mrkdwn') return renderMrkdwn(object.text || '', { inline });
  return el('span', { class: 'plain-text', text: plainText(object) });
}

export function plainText(object) {
  if (!object) return '';
  if (typeof object === 'string') return object;
  const text = String(object.text ?? '');
  if (object.type === 'mrkdwn') return mrkdwnToText(text);
  return object.emoji === false ? text : emojify(text);
}
