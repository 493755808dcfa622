// Meeting chat: the /ws/chat socket (first-frame auth, replay, reconnect) and the chat panel.

import { api, ApiError, newUuid, participantId } from './api.js';
import { h, mount, toast } from './dom.js';
import { MAX_ENCRYPTED_CONTENT } from './e2ee.js';
import { formatTime, t } from './i18n.js';

const BACKOFF_START_MS = 500;
const BACKOFF_CAP_MS = 10000;
const ACK_TIMEOUT_MS = 10000;
// A socket that opened but did not answer the auth frame with `ready` in this time is given up
// and opened again (the server itself closes an unauthenticated socket after 5 s).
const READY_TIMEOUT_MS = 10000;
const HISTORY_PAGE = 50;
// While the socket is down, new messages are fetched over REST with `after`, this many at once.
const CATCH_UP_PAGE = 200;
const CATCH_UP_PAGES = 5;
const MAX_CONTENT = 4000;
// A deleted message is hidden at once and deleted on the server only after this long, during
// which Undo brings it back.
const UNDO_MS = 5000;

/** Close codes after which reconnecting cannot help (docs/api.md, WebSocket section). */
export const CLOSE_ROOM_ENDED = 4410;
export const CLOSE_FORBIDDEN = 4403;
export const CLOSE_NOT_FOUND = 4404;
const FINAL_CODES = new Set([CLOSE_ROOM_ENDED, CLOSE_FORBIDDEN, CLOSE_NOT_FOUND]);

/**
 * The chat WebSocket of one room. Authenticates with its first frame (the participant id never
 * goes into the URL), asks for a replay after the last message seen, and reconnects by itself
 * with exponential backoff until told to stop or closed with a final code.
 */
export class ChatSocket {
  constructor({ roomId, lastSeenId, onFrame, onStatus, onFinal }) {
    this.url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/chat/${encodeURIComponent(roomId)}`;
    this.lastSeenId = lastSeenId;
    this.onFrame = onFrame;
    this.onStatus = onStatus;
    this.onFinal = onFinal;
    this.socket = null;
    this.isReady = false;
    this.attempt = 0;
    this.timer = null;
    this.readyTimer = null;
    this.closed = false;
    this.onOnline = () => {
      if (!this.socket && !this.closed) this.connectNow();
    };
    window.addEventListener('online', this.onOnline);
  }

  connect() {
    this.closed = false;
    this.connectNow();
  }

  connectNow() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.closed) return;
    if (this.socket) {
      const previous = this.socket;
      this.socket = null;
      previous.close(1000);
    }
    this.onStatus(this.attempt === 0 ? 'connecting' : 'reconnecting');
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    this.isReady = false;
    socket.addEventListener('open', () => {
      socket.send(JSON.stringify({ type: 'auth', participant_id: participantId(), after: this.lastSeenId() ?? null }));
      clearTimeout(this.readyTimer);
      this.readyTimer = setTimeout(() => {
        if (this.socket === socket && !this.isReady) socket.close(4000, 'no ready');
      }, READY_TIMEOUT_MS);
    });
    socket.addEventListener('message', (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (!frame || typeof frame.type !== 'string') return;
      if (frame.type === 'ready') {
        clearTimeout(this.readyTimer);
        this.isReady = true;
        this.attempt = 0;
        this.onStatus('ready');
      }
      this.onFrame(frame);
    });
    socket.addEventListener('close', (event) => {
      if (this.socket !== socket) return;
      clearTimeout(this.readyTimer);
      this.socket = null;
      this.isReady = false;
      if (this.closed) return;
      if (FINAL_CODES.has(event.code)) {
        this.closed = true;
        this.onStatus('closed');
        this.onFinal(event.code);
        return;
      }
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    if (this.closed || this.timer) return;
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_START_MS * 2 ** this.attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempt += 1;
    this.onStatus('reconnecting');
    this.timer = setTimeout(() => this.connectNow(), delay);
  }

  /** Sends a frame if the socket is authenticated; false when the caller must fall back to REST. */
  send(frame) {
    if (!this.isReady || this.socket?.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.readyTimer);
    this.timer = null;
    window.removeEventListener('online', this.onOnline);
    const socket = this.socket;
    this.socket = null;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000);
  }
}

function problemText(code, detail) {
  if (code === 'rate_limited') return t('chat.slowDown');
  const key = `error.${code}`;
  const text = t(key);
  return text !== key ? text : detail || code || '';
}

/**
 * The chat panel: messages kept by id (so nothing shows twice) and ordered by id (UUIDv7, so
 * by time); send, edit and delete.
 *
 * In an end-to-end encrypted room every user message is encrypted before it leaves (content
 * "e2ee:v1:…") and decrypted when it arrives, from history, live frames and edits alike. The
 * decryptions run side by side, but their results are applied in the order the messages came
 * (a queue), so an edit or a delete is never overtaken by the message it changes. A message
 * that cannot be decrypted shows a short placeholder, never its ciphertext.
 */
export class ChatPanel {
  /**
   * @param {object} options
   * @param {string} options.roomId
   * @param {any} options.self
   * @param {(frame: object) => boolean} options.send
   * @param {boolean} [options.e2ee]  the room is end-to-end encrypted
   * @param {import('./e2ee.js').ChatCipher | null} [options.cipher]  null: no key in the link
   * @param {(ok: boolean) => void} [options.onDecryption]  told whether a message of someone
   *   else could be decrypted (the page tells a wrong key from a missing one by it)
   * @param {(message: any) => void} [options.onNew]  a new message of someone else arrived (not
   *   history): the page counts it as unread while the chat is out of sight
   * @param {() => void} [options.onClose]  the panel's close button (the page hides the chat)
   */
  constructor({ roomId, self, send, e2ee = false, cipher = null, onDecryption, onNew, onClose }) {
    this.roomId = roomId;
    this.self = self;
    this.sendFrame = send;
    this.e2ee = Boolean(e2ee);
    this.cipher = cipher;
    this.onDecryption = onDecryption || (() => {});
    this.onNew = onNew || (() => {});
    this.queue = Promise.resolve();
    /** An encryption of the message box is under way (Enter pressed twice sends once). */
    this.sending = false;
    this.messages = new Map();
    this.rows = new Map();
    this.lastSeen = null;
    this.historyLoaded = false;
    this.historyLoading = false;
    /** A REST catch-up (socket down) is under way. */
    this.catchingUp = false;
    this.pending = new Map();
    this.editing = null;
    /** Deletions waiting out their undo time: id → {message, timer, notice}. */
    this.deletions = new Map();
    this.undoArea = h('div', { class: 'chat-undo-area' });
    // Closing or reloading the tab sends the deletions at once (they were meant).
    this.onPageHide = () => { this.flushDeletes({ keepalive: true }); };
    window.addEventListener('pagehide', this.onPageHide);

    this.status = h('span', { class: 'chat-status', testid: 'chat-status' });
    this.older = h('button', { type: 'button', class: 'btn btn-small chat-older', hidden: true,
      testid: 'chat-older', onclick: () => this.loadOlder() }, t('chat.older'));
    this.empty = h('p', { class: 'chat-empty' }, t('chat.empty'));
    // The list keeps its <ol> semantics; the live region that announces new messages is the
    // container around it (an <ol> cannot take role=log).
    this.list = h('ol', { class: 'messages', testid: 'chat-messages' });
    this.log = h('div', { class: 'chat-log', role: 'log', 'aria-label': t('chat.log'), testid: 'chat-log' }, this.list);
    this.scroller = h('div', { class: 'chat-scroll' }, this.older, this.empty, this.log);
    this.input = h('textarea', {
      class: 'chat-input', rows: 1, maxlength: MAX_CONTENT, placeholder: t('chat.placeholder'),
      'aria-label': t('chat.placeholder'), testid: 'chat-input',
    });
    this.error = h('p', { class: 'chat-error', role: 'alert', testid: 'chat-error' });
    this.sendButton = h('button', { type: 'submit', class: 'btn btn-primary chat-send', testid: 'chat-send',
      'aria-label': t('chat.send') }, h('span', { class: 'icon icon-send', 'aria-hidden': 'true' }),
    h('span', { class: 'chat-send-text' }, t('chat.send')));
    this.form = h('form', { class: 'chat-form' }, this.input, this.sendButton);
    if (this.e2ee && !this.cipher) {
      // Without the key nothing could be written that the others can read.
      this.input.disabled = true;
      this.sendButton.disabled = true;
      this.input.placeholder = t('chat.noKey');
      this.input.setAttribute('aria-label', t('chat.noKey'));
    }

    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.submit();
    });
    this.input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener('input', () => { this.error.textContent = ''; });

    this.closeButton = h('button', { type: 'button', class: 'icon-btn chat-close', testid: 'chat-close',
      'aria-label': t('chat.close'), title: t('chat.close'), onclick: () => onClose?.() },
    h('span', { class: 'icon icon-close', 'aria-hidden': 'true' }));
    this.element = h(
      'section',
      { class: 'panel panel-chat', id: `chat-${roomId}`, 'aria-label': t('room.chat'), testid: 'chat-panel' },
      h('header', { class: 'panel-header' },
        h('h2', { class: 'panel-title' }, h('span', { class: 'icon icon-chat', 'aria-hidden': 'true' }),
          t('room.chat')),
        h('span', { class: 'panel-header-end' }, this.status, this.closeButton)),
      this.scroller,
      this.error,
      this.form,
      this.undoArea,
    );
  }

  setSelf(self) {
    this.self = self;
    for (const message of this.messages.values()) this.renderRow(message);
  }

  lastSeenId() {
    return this.lastSeen;
  }

  setStatus(state) {
    // Reconnecting is said once, by the meeting's banner (stage.js), for video and chat
    // together: messages still come meanwhile, over REST. The header stays quiet.
    this.status.textContent = state === 'connecting' ? t('chat.connecting') : '';
    this.status.dataset.state = state;
  }

  // --- frames from the socket --------------------------------------------------------------

  /** Called on every `ready`: the first one (or one after a failed load) fetches history. */
  onReady() {
    if (!this.historyLoaded) this.loadHistory();
  }

  handleFrame(frame) {
    switch (frame.type) {
      case 'message.created':
        this.accept(frame.message);
        break;
      case 'message.updated':
        this.accept(frame.message, { onlyKnown: true });
        break;
      case 'message.deleted':
        this.inOrder(() => {
          this.dropDeletion(frame.message_id);
          this.removeMessage(frame.message_id);
        });
        break;
      case 'ack':
        this.settle(frame.client_msg_id);
        this.accept(frame.message, { own: true });
        break;
      case 'error': {
        const pending = this.settle(frame.client_msg_id);
        this.showError(t('chat.notSent', { reason: problemText(frame.code, frame.detail) }), pending);
        break;
      }
      default:
        break;
    }
  }

  // --- message store -----------------------------------------------------------------------

  /** Runs `step` after every message that arrived before it has been applied (e2ee rooms). */
  inOrder(step) {
    if (!this.e2ee) {
      step();
      return Promise.resolve();
    }
    this.queue = this.queue.then(step).catch(() => {});
    return this.queue;
  }

  /**
   * Takes a message from the server (frame, history, ack, REST answer): decrypted first in an
   * e2ee room, then stored and shown. `onlyKnown` (an edit) drops a message not shown here.
   * `advance`: the message came in a gap-free stream (history, catch-up, the socket), so the
   * cursor of the next replay or catch-up may move past it; the answer to our own POST or PUT
   * does not, since others may have written in between, unseen. `fresh`: it is news (not
   * history), so a new message of someone else counts as unread.
   */
  accept(message, { own = false, onlyKnown = false, advance = true, fresh = true } = {}) {
    if (!message?.id) return Promise.resolve();
    const id = String(message.id).toLowerCase();
    if (advance && !onlyKnown && (!this.lastSeen || id > this.lastSeen)) this.lastSeen = id;
    const apply = (shown) => {
      if (onlyKnown && !this.messages.has(id)) return;
      this.upsert(shown, { own, fresh: fresh && !onlyKnown });
    };
    if (!this.e2ee) {
      apply(message);
      return Promise.resolve();
    }
    const revealing = this.reveal(message);
    return this.inOrder(async () => apply(await revealing));
  }

  /**
   * The message as shown in an e2ee room: `text` is the decrypted content, or a placeholder
   * with `undecryptable` set. System messages are made by the server and are not encrypted.
   */
  async reveal(message) {
    if (message.message_type === 'system') return message;
    const plain = this.cipher ? await this.cipher.decrypt(message.content) : null;
    if (message.sender_id !== this.self?.id) this.onDecryption(plain !== null);
    if (plain === null) return { ...message, text: t('chat.undecryptable'), undecryptable: true };
    return { ...message, text: plain, undecryptable: false };
  }

  upsert(message, { own = false, fresh = false } = {}) {
    if (!message?.id) return;
    const id = String(message.id).toLowerCase();
    const deletion = this.deletions.get(id);
    if (deletion) {
      // Hidden while its deletion can still be undone: kept up to date, not shown.
      deletion.message = { ...deletion.message, ...message, id };
      return;
    }
    const known = this.messages.get(id);
    const merged = { ...known, ...message, id };
    this.messages.set(id, merged);
    const stick = own || this.nearBottom();
    this.renderRow(merged);
    this.empty.hidden = this.messages.size > 0;
    if (stick && !known) this.scrollToBottom();
    const fromOther = merged.message_type !== 'system' && merged.sender_id !== this.self?.id;
    if (fresh && !known && !own && fromOther) this.onNew(merged);
  }

  removeMessage(messageId) {
    const id = String(messageId || '').toLowerCase();
    this.messages.delete(id);
    // A removed row that had the focus hands it to the message box, not to <body>.
    const hadFocus = Boolean(this.rows.get(id)?.contains(document.activeElement));
    this.rows.get(id)?.remove();
    if (hadFocus) this.input.focus({ preventScroll: true });
    this.rows.delete(id);
    if (this.editing === id) this.editing = null;
    this.empty.hidden = this.messages.size > 0;
  }

  async loadHistory() {
    if (this.historyLoading) return;
    this.historyLoading = true;
    try {
      const page = await api.listMessages(this.roomId, { limit: HISTORY_PAGE });
      const stick = this.nearBottom();
      await Promise.all(page.map((message) => this.accept(message, { fresh: false })));
      this.historyLoaded = true;
      this.older.hidden = page.length < HISTORY_PAGE;
      if (stick) this.scrollToBottom();
    } catch {
      // Retried on the next `ready`; live messages keep flowing meanwhile.
    } finally {
      this.historyLoading = false;
      this.empty.hidden = this.messages.size > 0;
    }
  }

  /**
   * While the socket is down: the messages after the last one seen, over REST (the history
   * first, if it never came). Kept by id like everything else, so the socket's replay of the
   * same messages later shows nothing twice. Rejects with the ApiError of a failed request.
   */
  async catchUp() {
    if (!this.historyLoaded) {
      await this.loadHistory();
      return;
    }
    if (this.catchingUp) return;
    this.catchingUp = true;
    try {
      for (let round = 0; round < CATCH_UP_PAGES; round += 1) {
        const after = this.lastSeen;
        const page = await api.listMessages(this.roomId, after ? { limit: CATCH_UP_PAGE, after } : { limit: HISTORY_PAGE });
        await Promise.all(page.map((message) => this.accept(message)));
        if (page.length < CATCH_UP_PAGE || !after) break;
      }
    } finally {
      this.catchingUp = false;
      this.empty.hidden = this.messages.size > 0;
    }
  }

  async loadOlder() {
    const oldest = [...this.messages.keys()].sort()[0];
    if (!oldest) return;
    this.older.disabled = true;
    try {
      const page = await api.listMessages(this.roomId, { limit: HISTORY_PAGE, before: oldest });
      const fromBottom = this.scroller.scrollHeight - this.scroller.scrollTop;
      await Promise.all(page.map((message) => this.accept(message, { fresh: false })));
      this.scroller.scrollTop = this.scroller.scrollHeight - fromBottom;
      this.older.hidden = page.length < HISTORY_PAGE;
    } catch (error) {
      toast(error instanceof ApiError ? error.describe() : t('error.network'), 'error');
    } finally {
      this.older.disabled = false;
    }
  }

  // --- rendering ---------------------------------------------------------------------------

  renderRow(message) {
    const old = this.rows.get(message.id);
    if (old && this.editing === message.id) return;
    const row = this.buildRow(message);
    const focused = old?.contains(document.activeElement) ? document.activeElement : null;
    if (old) {
      old.replaceWith(row);
    } else {
      // Messages nearly always arrive in order, so the search starts from the end.
      let next = null;
      for (let node = this.list.lastElementChild; node; node = node.previousElementSibling) {
        if (node.dataset.messageId < message.id) break;
        next = node;
      }
      this.list.insertBefore(row, next);
    }
    this.rows.set(message.id, row);
    if (focused) refocus(row, focused);
  }

  buildRow(message) {
    const isSystem = message.message_type === 'system';
    const text = isSystem ? systemText(message) : (message.text ?? message.content ?? '');
    const isOwn = !isSystem && Boolean(this.self?.id) && message.sender_id === this.self.id;
    const canEdit = isOwn && !message.undecryptable && !(this.e2ee && !this.cipher);
    const canDelete = isOwn || this.self?.role === 'host';
    const content = h('div', { class: 'msg-content', testid: 'chat-message-content' }, text);
    const actions = canEdit || canDelete
      ? h('div', { class: 'msg-actions' },
        canEdit ? h('button', { type: 'button', class: 'link-btn', testid: 'chat-edit',
          onclick: () => this.startEdit(message.id) }, t('chat.edit')) : null,
        canDelete ? h('button', { type: 'button', class: 'link-btn link-btn-danger', testid: 'chat-delete',
          onclick: () => this.delete(message.id) }, t('chat.delete')) : null)
      : null;
    const time = h('time', { class: 'msg-time', datetime: message.created_at || '' }, formatTime(message.created_at));
    if (isSystem) {
      return h('li', { class: 'msg msg-system', testid: 'chat-message', dataset: { messageId: message.id, type: 'system' } },
        content, time, actions);
    }
    if (message.undecryptable) content.classList.add('msg-undecryptable');
    return h(
      'li',
      { class: `msg ${isOwn ? 'msg-own' : ''}`, testid: 'chat-message',
        dataset: { messageId: message.id, type: 'user', ...(message.undecryptable ? { undecryptable: 'true' } : {}) } },
      h('div', { class: 'msg-head' },
        h('span', { class: 'msg-author' }, message.display_name || '?'),
        time,
        message.edited_at ? h('span', { class: 'msg-edited', testid: 'chat-message-edited' }, t('chat.edited')) : null),
      content,
      actions,
    );
  }

  nearBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  // --- sending, editing, deleting ----------------------------------------------------------

  showError(text, restore) {
    this.error.textContent = text;
    if (restore && !this.input.value) this.input.value = restore;
  }

  settle(clientMsgId) {
    const pending = this.pending.get(clientMsgId);
    if (!pending) return null;
    clearTimeout(pending.timer);
    this.pending.delete(clientMsgId);
    return pending.content;
  }

  /** What goes over the wire for `text`: the text itself, or in an e2ee room its ciphertext. */
  async seal(text) {
    if (!this.e2ee) return text;
    if (!this.cipher) throw new Error('no key');
    return this.cipher.encrypt(text);
  }

  async submit() {
    const text = this.input.value.trim();
    if (!text || this.sending) return;
    this.error.textContent = '';
    let content;
    this.sending = true;
    try {
      content = await this.seal(text);
    } catch {
      this.showError(t('chat.noKey'), text);
      return;
    } finally {
      this.sending = false;
    }
    if (this.e2ee && content.length > MAX_ENCRYPTED_CONTENT) {
      this.showError(t('chat.notSent', { reason: t('chat.tooLong') }), text);
      return;
    }
    if (this.input.value.trim() === text) this.input.value = '';
    const clientMsgId = newUuid();
    if (this.sendFrame({ type: 'message.send', content, client_msg_id: clientMsgId })) {
      const timer = setTimeout(() => {
        if (this.settle(clientMsgId) !== null) this.showError(t('chat.noAck'), text);
      }, ACK_TIMEOUT_MS);
      // The text typed, not what was sent: it is what goes back into the box on a failure.
      this.pending.set(clientMsgId, { content: text, timer });
      this.input.focus();
      return;
    }
    this.sendButton.disabled = true;
    try {
      await this.accept(await api.postMessage(this.roomId, content), { own: true, advance: false });
    } catch (error) {
      const reason = error instanceof ApiError ? error.describe() : t('error.network');
      this.showError(t('chat.notSent', { reason }), text);
    } finally {
      this.sendButton.disabled = false;
      this.input.focus();
    }
  }

  startEdit(messageId) {
    const message = this.messages.get(messageId);
    const row = this.rows.get(messageId);
    if (!message || !row) return;
    if (this.editing && this.editing !== messageId) this.cancelEdit();
    this.editing = messageId;
    const editor = h('textarea', { class: 'msg-editor', rows: 2, maxlength: MAX_CONTENT, testid: 'chat-edit-input',
      'aria-label': t('chat.edit') });
    const before = message.text ?? message.content ?? '';
    editor.value = before;
    const save = h('button', { type: 'submit', class: 'btn btn-small btn-primary', testid: 'chat-edit-save' }, t('chat.save'));
    const cancel = h('button', { type: 'button', class: 'btn btn-small', testid: 'chat-edit-cancel',
      onclick: () => this.cancelEdit() }, t('chat.cancel'));
    const form = h('form', { class: 'msg-edit' }, editor, h('div', { class: 'msg-edit-actions' }, cancel, save));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const text = editor.value.trim();
      if (!text || text === before) {
        this.cancelEdit();
        return;
      }
      save.disabled = true;
      try {
        const content = await this.seal(text);
        if (this.e2ee && content.length > MAX_ENCRYPTED_CONTENT) throw new Error(t('chat.tooLong'));
        const updated = await api.editMessage(this.roomId, messageId, content);
        this.editing = null;
        await this.accept(updated, { advance: false });
      } catch (error) {
        save.disabled = false;
        const reason = error instanceof ApiError ? error.describe()
          : error?.message === t('chat.tooLong') ? t('chat.tooLong') : t('error.network');
        toast(reason, 'error');
      }
    });
    editor.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        this.cancelEdit();
        return;
      }
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    mount(row.querySelector('.msg-content'), form);
    row.querySelector('.msg-actions')?.setAttribute('hidden', '');
    editor.focus();
  }

  /** Closes the editor; when the focus was in it, it goes back to the message's Edit button. */
  cancelEdit() {
    const id = this.editing;
    this.editing = null;
    const message = id && this.messages.get(id);
    if (message) this.renderRow(message);
  }

  /** Delete: the message goes at once, the request only after UNDO_MS, unless Undo is pressed. */
  delete(messageId) {
    const id = String(messageId || '').toLowerCase();
    const message = this.messages.get(id);
    if (!message || this.deletions.has(id)) return;
    this.removeMessage(id);
    const undo = h('button', { type: 'button', class: 'link-btn chat-undo-button', testid: 'chat-undo',
      onclick: () => this.undoDelete(id) }, t('chat.undo'));
    const notice = h('div', { class: 'chat-undo', role: 'status', testid: 'chat-deleted' },
      h('span', {}, t('chat.deleted')), undo);
    const timer = setTimeout(() => { this.commitDelete(id); }, UNDO_MS);
    this.deletions.set(id, { message, timer, notice });
    this.undoArea.appendChild(notice);
  }

  /** Ends a deletion's undo time: its notice goes (the focus, if it had it, to the message box). */
  dropDeletion(messageId) {
    const id = String(messageId || '').toLowerCase();
    const deletion = this.deletions.get(id);
    if (!deletion) return null;
    clearTimeout(deletion.timer);
    this.deletions.delete(id);
    const hadFocus = deletion.notice.contains(document.activeElement);
    deletion.notice.remove();
    if (hadFocus) this.input.focus({ preventScroll: true });
    return deletion;
  }

  /** Undo: the message is back where it was; the focus (from Undo) goes to the message box. */
  undoDelete(messageId) {
    const deletion = this.dropDeletion(messageId);
    if (deletion) this.upsert(deletion.message);
  }

  async commitDelete(messageId, { keepalive = false } = {}) {
    const deletion = this.dropDeletion(messageId);
    if (!deletion) return;
    try {
      await api.deleteMessage(this.roomId, deletion.message.id, { keepalive });
    } catch (error) {
      if (error instanceof ApiError && error.code === 'message_not_found') return; // gone already
      // Not deleted after all: it comes back, and the page says why.
      this.upsert(deletion.message);
      toast(error instanceof ApiError ? error.describe() : t('error.network'), 'error');
    }
  }

  /** Sends every deletion still waiting; resolves once the server has answered them all. */
  flushDeletes({ keepalive = false } = {}) {
    return Promise.all([...this.deletions.keys()].map((id) => this.commitDelete(id, { keepalive })));
  }

    /** The meeting is over for this page; returns the deletions still waiting, sent now. */
  destroy() {
    for (const pending of this.pending.values()) clearTimeout(pending.timer);
    this.pending.clear();
    window.removeEventListener('pagehide', this.onPageHide);
    return this.flushDeletes();
  }
}

// A system message says what happened in its `system` field; it is worded here in the page's
// language. An event this page does not know is shown with the server's English `content`.
const SYSTEM_KEYS = {
  joined: 'system.joined',
  left: 'system.left',
  kicked: 'system.removed',
  timed_out: 'system.timedOut',
  host_changed: 'system.hostChanged',
  room_ended: 'system.roomEnded',
};

/**
 * A row was rebuilt while it had the focus (an edit saved or cancelled, an update arriving):
 * the focus goes to the same control in the new row, else to its Edit button, else to its
 * first button, so a keyboard user never lands back on <body>.
 */
function refocus(row, previous) {
  const testid = previous instanceof HTMLElement ? previous.dataset.testid : '';
  /** @type {HTMLElement | null} */
  const target = (testid && row.querySelector(`[data-testid="${testid}"]`))
    || row.querySelector('[data-testid="chat-edit"]') || row.querySelector('button');
  target?.focus();
}

function systemText(message) {
  const key = SYSTEM_KEYS[message.system?.event];
  return key ? t(key, { name: message.system.display_name ?? '' }) : (message.content ?? '');
}
