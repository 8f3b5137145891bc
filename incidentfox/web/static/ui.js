// Small DOM helpers shared by every view. Text always goes in through textContent, never HTML.

/**
 * Build an element. props: class, text, dataset-style "data-*"/"aria-*"/"role"/"for" attributes,
 * "on<event>" listeners, and plain properties (type, value, disabled, title, href, placeholder...).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = String(value);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key.startsWith('data-') || key.startsWith('aria-') || key === 'role' || key === 'for' || key === 'tabindex' || key === 'list') {
      node.setAttribute(key, value === true ? '' : String(value));
    } else node[key] = value;
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

/** A link only for http(s) and mailto addresses; anything else comes back null. */
export function safeUrl(url) {
  if (typeof url !== 'string') return null;
  const trimmed = url.trim();
  return /^(https?:\/\/|mailto:)/i.test(trimmed) ? trimmed : null;
}

export function link(url, label, props = {}) {
  const href = safeUrl(url);
  if (!href) return el('span', { ...props, text: label });
  return el('a', { ...props, href, target: '_blank', rel: 'noopener noreferrer', text: label });
}

export function openUrl(url) {
  const href = safeUrl(url);
  if (href) window.open(href, '_blank', 'noopener,noreferrer');
}

// ---- time ----

export function tsToDate(ts) {
  const seconds = parseFloat(ts);
  return Number.isFinite(seconds) ? new Date(seconds * 1000) : null;
}

export function clockTime(date) {
  if (!date) return '';
  return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
}

export function fullDate(date) {
  if (!date) return '';
  return date.toLocaleString([], {
    weekday: 'long', year: 'numeric', month: 'long', day: 'numeric',
    hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
  });
}

export function dayKey(date) {
  return date ? `${date.getFullYear()}-${date.getMonth()}-${date.getDate()}` : '';
}

export function dayLabel(date) {
  if (!date) return '';
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (dayKey(date) === dayKey(today)) return 'Today';
  if (dayKey(date) === dayKey(yesterday)) return 'Yesterday';
  const sameYear = date.getFullYear() === today.getFullYear();
  return date.toLocaleDateString([], { weekday: 'long', month: 'long', day: 'numeric', year: sameYear ? undefined : 'numeric' });
}

/** An ISO timestamp (console API) as a short local date and time. */
export function isoShort(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString([], { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
}

// ---- avatars ----

const AVATAR_COLORS = ['#e8912d', '#2bac76', '#1264a3', '#e01e5a', '#4a154b', '#0b8a8a', '#9b4dca', '#b35900', '#3c8dbc', '#d6336c'];

export function avatarColor(id) {
  let hash = 0;
  for (const ch of String(id || '')) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return AVATAR_COLORS[hash % AVATAR_COLORS.length];
}

export function initials(name) {
  const words = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? words[0][0] + words[words.length - 1][0] : (words[0] || '?').slice(0, 2);
  return letters.toUpperCase();
}

export function avatar(id, name, { bot = false, size = 36 } = {}) {
  const style = `width:${size}px;height:${size}px`;
  if (bot) {
    return el('span', { class: 'avatar avatar-bot', style, 'aria-hidden': 'true' },
      el('img', { src: '/ui/static/favicon.svg', alt: '', width: size - 6, height: size - 6 }));
  }
  const node = el('span', { class: 'avatar', 'aria-hidden': 'true', text: initials(name) });
  node.style.cssText = `${style};background:${avatarColor(id)};font-size:${Math.round(size * 0.4)}px`;
  return node;
}

// ---- toasts ----

let toastHost = null;

export function toast(message, { kind = 'info', timeout = 6000 } = {}) {
  if (!toastHost) {
    toastHost = el('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(toastHost);
  }
  const close = el('button', { class: 'toast-close', type: 'button', 'aria-label': 'Dismiss', text: '×' });
  const node = el('div', { class: `toast toast-${kind}`, 'data-testid': 'toast' }, el('span', { text: message }), close);
  const remove = () => node.remove();
  close.addEventListener('click', remove);
  toastHost.append(node);
  if (timeout) setTimeout(remove, timeout);
  return node;
}

// ---- confirm dialog ----

/**
 * Ask before doing something. body is a Node or a string. Resolves true on confirm.
 */
export function confirmDialog({ title = 'Are you sure?', body = '', confirmText = 'Confirm', denyText = 'Cancel', danger = false } = {}) {
  return new Promise((resolve) => {
    const previous = document.activeElement;
    const finish = (answer) => {
      overlay.remove();
      document.removeEventListener('keydown', onKey, true);
      if (previous && previous.focus) previous.focus();
      resolve(answer);
    };
    const onKey = (event) => {
      if (event.key === 'Escape') { event.stopPropagation(); event.preventDefault(); finish(false); }
    };
    const ok = el('button', { type: 'button', class: `btn ${danger ? 'btn-danger' : 'btn-primary'}`, 'data-testid': 'confirm-ok', text: confirmText, onclick: () => finish(true) });
    const dialog = el('div', { class: 'dialog confirm-dialog', role: 'alertdialog', 'aria-modal': 'true', 'aria-label': title },
      el('div', { class: 'dialog-head' }, el('h2', { text: title })),
      el('div', { class: 'dialog-body' }, body),
      el('div', { class: 'dialog-foot' },
        el('button', { type: 'button', class: 'btn', 'data-testid': 'confirm-cancel', text: denyText, onclick: () => finish(false) }),
        ok));
    const overlay = el('div', { class: 'overlay confirm-overlay', onclick: (e) => { if (e.target === overlay) finish(false); } }, dialog);
    document.addEventListener('keydown', onKey, true);
    document.body.append(overlay);
    ok.focus();
  });
}

/** Copy text; falls back to a hidden textarea where the Clipboard API is unavailable (http). */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = el('textarea', { value: text, class: 'offscreen', 'aria-hidden': 'true' });
    document.body.append(area);
    area.select();
    const ok = document.execCommand('copy');
    area.remove();
    return ok;
  }
}

/** JSON equality that ignores key order: used to skip re-rendering what did not change. */
export function sameJson(a, b) {
  return stableJson(a) === stableJson(b);
}

function stableJson(value) {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((key) => `${JSON.stringify(key)}:${stableJson(value[key])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
