// A message's files as cards: an icon by type, the name and size, a download link on this page's own
// origin, and for small text files a preview that loads the first time it is opened.

import { el } from './ui.js';
import { fileText, fileUrl } from './api.js';

// The icon is a colored badge per kind with the file's extension on it (no emoji font needed).
const KINDS = new Set(['image', 'pdf', 'archive', 'code', 'text', 'other']);
const FALLBACK_LABEL = { image: 'IMG', pdf: 'PDF', archive: 'ZIP', code: 'CODE', text: 'TXT', other: 'FILE' };

function iconLabel(name, kind) {
  const match = /\.([A-Za-z0-9]{1,4})$/.exec(name || '');
  return match ? match[1].toUpperCase() : FALLBACK_LABEL[kind];
}

export function formatSize(bytes) {
  const n = Math.max(0, Number(bytes) || 0);
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** The cards of a message's files, or null when it has none. */
export function renderFiles(files) {
  if (!Array.isArray(files) || !files.length) return null;
  return el('div', { class: 'msg-files', 'data-testid': 'message-files' }, files.map(fileCard));
}

function fileCard(file) {
  const kind = KINDS.has(file.kind) ? file.kind : 'other';
  const meta = [file.pretty_type, formatSize(file.size)].filter(Boolean).join(' · ');
  const card = el('div', { class: `file-card file-${kind}`, 'data-testid': 'file-card', 'data-file-id': file.id, 'data-kind': kind },
    el('span', { class: `file-icon file-icon-${kind}`, 'data-testid': 'file-icon', 'aria-hidden': 'true', text: iconLabel(file.name, kind) }),
    el('div', { class: 'file-info' },
      el('div', { class: 'file-name', 'data-testid': 'file-name', title: file.title || file.name, text: file.name }),
      el('div', { class: 'file-meta', text: meta })),
    file.available
      ? el('a', { class: 'file-download', 'data-testid': 'file-download', href: fileUrl(file), download: file.name || 'file', text: 'Download' })
      : el('span', { class: 'file-gone', 'data-testid': 'file-gone', title: 'Uploads are not kept when IncidentFox restarts', text: 'No longer available' }));
  if (!file.available || !file.previewable) return card;
  return el('div', { class: 'file-wrap' }, card, preview(file));
}

function preview(file) {
  const text = el('pre', { class: 'file-preview-text', 'data-testid': 'file-preview-text' });
  const details = el('details', { class: 'file-preview', 'data-testid': 'file-preview' },
    el('summary', { text: 'Preview' }), text);
  let loaded = false;
  details.addEventListener('toggle', async () => {
    if (!details.open || loaded) return;
    loaded = true;
    text.classList.remove('file-preview-error');
    text.textContent = 'Loading…';
    try {
      text.textContent = await fileText(file);
    } catch (err) {
      loaded = false; // opening it again retries
      text.classList.add('file-preview-error');
      text.textContent = err.message;
    }
  });
  return details;
}
