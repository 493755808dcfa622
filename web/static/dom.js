// Element building without innerHTML: every string becomes a text node, so text typed by
// other people can never turn into markup.

/**
 * h('button', {class: 'btn', testid: 'leave-button', onclick: fn}, 'Leave')
 * Attributes: `class`, `testid` (data-testid), `dataset` (object), `on<event>` (listener),
 * booleans (true sets the attribute, false/null/undefined skips it), anything else via
 * setAttribute. Children: strings, numbers, nodes, arrays of those; null/false are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name === 'testid') el.dataset.testid = value;
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'value') el.value = value;
    else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replaces all children of `el` with `children`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Up to two letters standing for a name, for avatars. */
export function initials(name) {
  const words = String(name || '').trim().split(/\s+/).filter(Boolean);
  // Letters and digits first; a name of only emoji keeps its first symbol.
  const letters = words.map((w) => w.match(/[\p{L}\p{N}]/u)?.[0]).filter(Boolean).slice(0, 2);
  if (letters.length) return letters.join('').toUpperCase();
  return Array.from(words[0] || '?')[0];
}

/** A stable hue (0–359) from a string, so each person keeps one avatar colour. */
export function hueOf(text) {
  let hash = 0;
  for (const ch of String(text)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return hash % 360;
}

const HUE_CLASSES = 12;
/** One of a fixed set of colour classes (inline styles are forbidden by the CSP). */
export function hueClass(text) {
  return `hue-${Math.floor(hueOf(text) / (360 / HUE_CLASSES))}`;
}

let toastArea = null;

/** A short message in the corner that goes away by itself. */
export function toast(message, kind = 'info') {
  if (!toastArea) {
    toastArea = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.appendChild(toastArea);
  }
  const item = h('div', { class: `toast toast-${kind}`, testid: 'toast' }, message);
  toastArea.appendChild(item);
  setTimeout(() => item.classList.add('toast-leaving'), 4200);
  setTimeout(() => item.remove(), 4600);
}

let announcer = null;

/**
 * Says `text` to screen readers through one polite live region (visually hidden), for changes
 * that show only as a word on a button or a notice: "Copied", video failures.
 */
export function announce(text) {
  if (!announcer) {
    announcer = h('div', { class: 'sr-only', role: 'status', 'aria-live': 'polite', 'aria-atomic': 'true',
      testid: 'announcer' });
    document.body.appendChild(announcer);
  }
  const region = announcer;
  // Emptied first, so that the same words said twice are announced twice.
  region.textContent = '';
  setTimeout(() => { region.textContent = text; }, 100);
}

let dialogIds = 0;

/**
 * Asks before something that cannot be taken back, with a native modal <dialog>: its title,
 * a sentence, Cancel (which has the focus, so Enter or Escape never does the harm) and the
 * action's own button. Resolves to true only when the action's button was pressed.
 * @param {{title: string, text: string, confirm: string, cancel: string, danger?: boolean}} options
 * @returns {Promise<boolean>}
 */
export function confirmDialog({ title, text, confirm, cancel, danger = true }) {
  dialogIds += 1;
  const titleId = `dialog-title-${dialogIds}`;
  const textId = `dialog-text-${dialogIds}`;
  const cancelButton = h('button', { type: 'submit', value: 'cancel', class: 'btn', testid: 'confirm-cancel', autofocus: true },
    cancel);
  const okButton = h('button', { type: 'submit', value: 'ok', class: danger ? 'btn btn-danger' : 'btn btn-primary',
    testid: 'confirm-ok' }, confirm);
  const dialog = /** @type {HTMLDialogElement} */ (h('dialog', {
    class: 'dialog card', testid: 'confirm-dialog', 'aria-labelledby': titleId, 'aria-describedby': textId,
  },
  h('form', { method: 'dialog', class: 'dialog-form' },
    h('h2', { class: 'dialog-title', id: titleId }, title),
    h('p', { class: 'dialog-text', id: textId }, text),
    h('div', { class: 'dialog-actions' }, cancelButton, okButton))));
  const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  document.body.appendChild(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      dialog.remove();
      if (opener?.isConnected) opener.focus({ preventScroll: true });
      resolve(dialog.returnValue === 'ok');
    }, { once: true });
    dialog.showModal();
    cancelButton.focus();
  });
}

/** Closes every open dialog, a confirmation as cancelled (the page it was about went away). */
export function closeDialogs() {
  for (const dialog of document.querySelectorAll('dialog.dialog[open]')) {
    /** @type {HTMLDialogElement} */ (dialog).close('cancel');
  }
}

/**
 * A native modal <dialog> that only tells something (the keyboard shortcuts): its title, the
 * content, and a Close button (Escape closes it too). Resolves when it closes.
 * @param {{title: string, body: Node, close: string, testid: string}} options
 * @returns {Promise<void>}
 */
export function infoDialog({ title, body, close, testid }) {
  dialogIds += 1;
  const titleId = `dialog-title-${dialogIds}`;
  const closeButton = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'dialog-close' }, close);
  const dialog = /** @type {HTMLDialogElement} */ (h('dialog', {
    class: 'dialog card', testid, 'aria-labelledby': titleId,
  },
  h('form', { method: 'dialog', class: 'dialog-form' },
    h('h2', { class: 'dialog-title', id: titleId }, title),
    body,
    h('div', { class: 'dialog-actions' }, closeButton))));
  const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  document.body.appendChild(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      dialog.remove();
      if (opener?.isConnected) opener.focus({ preventScroll: true });
      resolve();
    }, { once: true });
    dialog.showModal();
    closeButton.focus();
  });
}
