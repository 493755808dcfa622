// The room page /r/{room_id}: look the room up, the pre-join step, then the meeting itself.

import {
  api, ApiError, hasEntered, isUuid, rememberedMembership, rememberedName, rememberEntered, rememberMembership,
  rememberName, rememberRemoved, wasRemoved,
} from './api.js';
import { ChatPanel, ChatSocket, CLOSE_FORBIDDEN, CLOSE_NOT_FOUND, CLOSE_ROOM_ENDED } from './chat.js';
import { chime, LobbyPanel, prejoinNotes, RoomSettings, soundsSwitch } from './controls.js';
import { openDevicesDialog, PrejoinDevices } from './devices.js';
import { announce, closeDialogs, confirmDialog, h, infoDialog, mount, toast } from './dom.js';
import { ChatCipher, e2eeAvailable, keyFragment, keyFromFragment } from './e2ee.js';
import { t } from './i18n.js';
import { DevicePreview, MediaStage, toggleButton } from './media.js';
import { ParticipantList } from './participants.js';
import { ReconnectBanner } from './stage.js';
import {
  showDenied, showEnded, showError, showFull, showKicked, showNotFound, showRateLimited,
} from './screens.js';

const LEAVE_TIMEOUT_MS = 3000;
// While the chat socket is down nothing pushes joins, leaves, kicks or the end of the meeting,
// so the page asks for them at this pace until the socket is back.
const OFFLINE_POLL_MS = 10000;
// While the chat socket is down, new messages are fetched over REST at this pace (slower after
// a 429, by its Retry-After: the room's request budget is shared by all its members).
const CHAT_POLL_MS = 4000;
// A full room is looked at again at this pace on pre-join, so Join opens once a place frees up.
const FULL_POLL_MS = 5000;
// Otherwise pre-join looks at the room at this pace. A GET of the room with the identity of a
// member is a sign of life of that member (docs/api.md, section 6): a member who waits on
// pre-join (the creator right after creating, anyone after a reload) is not timed out after
// PRESENCE_TIMEOUT_SECONDS (90 s), so the room does not end before they join. A third of it,
// and well under a minute, which is what a hidden tab's timers may be slowed down to.
const PREJOIN_POLL_MS = 30000;
// Keyboard shortcuts of the meeting, by physical key (so they work in any keyboard layout).
const SHORTCUTS = [
  { code: 'KeyM', key: 'M', label: 'shortcuts.mic' },
  { code: 'KeyV', key: 'V', label: 'shortcuts.camera' },
  { code: 'KeyC', key: 'C', label: 'shortcuts.chat' },
  { code: 'KeyH', key: 'H', label: 'shortcuts.hand' },
];

/** Whether typing in `target` is text: shortcuts stay out of its way. */
function isTextField(target) {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return true;
  if (!(target instanceof HTMLInputElement)) return false;
  return !['button', 'checkbox', 'radio', 'range', 'color', 'file', 'submit', 'reset', 'image'].includes(target.type);
}

// Under this width the chat is a sheet opened from its toggle, not a panel below the fold.
const PHONE_QUERY = '(max-width: 700px)';
// While waiting in a room's lobby, the join is repeated at this pace (docs/api.md, section 16):
// 202 while waiting, 201 once a host admitted, 403 lobby_denied once one denied.
const LOBBY_POLL_MS = 3000;

function loading() {
  return h('div', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }));
}

/** The public fields of the caller's own membership: the secret participant_id stays out. */
function publicView(self) {
  return { id: self.id, display_name: self.display_name, role: self.role, joined_at: self.joined_at };
}

/**
 * @param {HTMLElement} root
 * @param {(path: string) => void} navigate
 * @param {string} roomId
 * @param {(guard: (() => true | Promise<boolean>) | null) => void} [setGuard]  how the app asks
 *   the page before leaving it (the logo, Back)
 */
export function renderRoom(root, navigate, roomId, setGuard) {
  const session = new RoomSession(root, navigate, roomId);
  setGuard?.(() => session.mayLeave());
  session.open();
  // The cleanup also says whether a meeting is on (the language switch reloads the page then).
  return Object.assign(() => session.destroy(), { inMeeting: () => session.state.name === 'meeting' });
}

/**
 * What the page is doing. Each state owns its resources, and leaving a state releases them,
 * so no flag has to be re-checked: an async step goes on only while the state it started in
 * is still the current one.
 *
 *   loading ─► prejoin ─► meeting ─► leaving
 *      ▲          │  │       ▲  │
 *      │          │  └► lobby┘  │   (lobby: waiting for a host to admit)
 *      └── over ◄─┴──────┴──────┘   (any state) ─► closed, when the page goes away
 *
 * @typedef {{ name: 'loading' }
 *   | { name: 'prejoin', preview: DevicePreview, devices?: PrejoinDevices,
 *       timer: ReturnType<typeof setTimeout> | null }
 *   | { name: 'lobby', timer: ReturnType<typeof setTimeout> | null }
 *   | { name: 'meeting', meeting: Meeting }
 *   | { name: 'leaving' }
 *   | { name: 'over', cleanup: (() => void) | null }
 *   | { name: 'closed' }} SessionState
 */

/** Releases what a state holds as the session leaves it. */
function release(state) {
  if (state.name === 'prejoin') {
    state.devices?.stop();
    state.preview.stop();
    clearTimeout(state.timer);
  } else if (state.name === 'lobby') clearTimeout(state.timer);
  else if (state.name === 'meeting') state.meeting.stop();
  else if (state.name === 'over') state.cleanup?.();
}

class RoomSession {
  constructor(root, navigate, roomId) {
    this.root = root;
    this.navigate = navigate;
    this.roomId = String(roomId).toLowerCase();
    /** The public room as last fetched. */
    this.room = null;
    /** @type {SessionState} */
    this.state = { name: 'loading' };
    /**
     * The room key of an end-to-end encrypted room, from the link's fragment (#k=…). It lives
     * there only: never stored, never sent (docs/api.md, section 17).
     */
    this.key = keyFromFragment(location.hash);
    /** The chat cipher made from the key, once the room is known to be encrypted. */
    this.cipher = null;
    /** The open "leave the meeting?" question, if any. */
    this.asking = null;
  }

  /** Why this page cannot read an e2ee room: no usable key in its link, or no WebCrypto. */
  keyProblem() {
    return e2eeAvailable() ? t('e2ee.noKey') : t('home.create.e2ee.unavailable');
  }

  /** Moves to `next`, releasing what the current state holds; false once the page is closed. */
  moveTo(next) {
    if (this.state.name === 'closed') return false;
    release(this.state);
    this.state = next;
    return true;
  }

  // --- final screens -----------------------------------------------------------------------

  /** Leaves whatever the page was doing for one of the final screens. */
  finish(kind, extra = {}) {
    // Somebody who never got into this meeting (the creator still on pre-join, a guest who
    // arrives late) is told it ended before they joined, not thanked for taking part.
    const beforeJoin = this.state.name !== 'meeting' && !hasEntered(this.roomId);
    const over = { name: 'over', cleanup: null };
    if (!this.moveTo(over)) return;
    document.title = t('app.name');
    const retry = () => this.open();
    switch (kind) {
      case 'not-found': showNotFound(this.root, this.navigate); break;
      case 'ended': showEnded(this.root, this.navigate, { beforeJoin }); break;
      case 'kicked': showKicked(this.root, this.navigate); break;
      case 'denied': showDenied(this.root, this.navigate); break;
      case 'full':
        showFull(this.root, this.navigate, { maxParticipants: this.room?.max_participants, onRetry: retry });
        break;
      case 'rate-limited':
        over.cleanup = showRateLimited(this.root, this.navigate, { seconds: extra.seconds, onRetry: retry });
        break;
      default:
        showError(this.root, this.navigate, { onRetry: retry });
    }
  }

  /** The screen for an API error that ends this visit, or false if the caller should handle it. */
  finishFor(error) {
    if (!(error instanceof ApiError)) return false;
    if (error.code === 'room_not_found' || (error.status === 404 && error.code !== 'participant_not_found')) {
      this.finish('not-found');
    } else if (error.code === 'room_ended') this.finish('ended');
    else if (error.code === 'room_full') this.finish('full');
    else if (error.code === 'banned') {
      // Only the server's word is remembered, never a guess (a second 4403, a lost answer).
      rememberRemoved(this.roomId);
      this.finish('kicked');
    }
    else if (error.code === 'lobby_denied') this.finish('denied');
    else if (error.code === 'rate_limited' || error.status === 429) {
      this.finish('rate-limited', { seconds: error.retryAfter ?? 5 });
    } else return false;
    return true;
  }

  // --- step 1: the room --------------------------------------------------------------------

  async open() {
    const loadingState = { name: 'loading' };
    if (!this.moveTo(loadingState)) return;
    if (!isUuid(this.roomId)) {
      this.finish('not-found');
      return;
    }
    mount(this.root, loading());
    let room;
    try {
      room = await api.getRoom(this.roomId);
    } catch (error) {
      if (this.state !== loadingState) return;
      if (!this.finishFor(error)) this.finish('error');
      return;
    }
    if (this.state !== loadingState) return;
    this.room = room;
    if (room.status === 'ended') {
      this.finish('ended');
      return;
    }
    // Removed by a host before (this browser saw it): the ban holds, Join would only say so.
    if (wasRemoved(this.roomId)) {
      this.finish('kicked');
      return;
    }
    if (room.e2ee && this.key.bytes && e2eeAvailable() && !this.cipher) {
      try {
        this.cipher = await ChatCipher.fromRoomKey(this.key.bytes, this.roomId);
      } catch {
        this.cipher = null; // said on pre-join and in the meeting: the room cannot be read
      }
      if (this.state !== loadingState) return;
    }
    const hasPlace = await this.hasPlace(room);
    if (this.state === loadingState) this.showPrejoin(hasPlace);
  }

  /**
   * Whether Join can succeed as far as the page can tell: a free place, or a place this
   * browser already holds (a member who reloads counts among the participants).
   */
  async hasPlace(room) {
    const max = Number(room.max_participants);
    if (!max || Number(room.participant_count ?? 0) < max) return true;
    const mine = rememberedMembership(this.roomId);
    if (!mine) return false;
    try {
      return (await api.listParticipants(this.roomId)).some((person) => person.id === mine);
    } catch {
      return true; // the server decides on Join
    }
  }

  // --- step 2: pre-join --------------------------------------------------------------------

  showPrejoin(hasPlace = true) {
    const room = this.room;
    document.title = `${room.title} · ${t('app.name')}`;
    const video = h('video', { class: 'preview-video mirror', autoplay: true, playsinline: true, muted: true });
    video.muted = true;
    const placeholder = h('div', { class: 'preview-placeholder' }, t('prejoin.preview.starting'));
    const deviceNote = h('p', { class: 'preview-note', role: 'status', testid: 'prejoin-devices' });

    const preview = new DevicePreview(video, (p) => {
      micButton.update(p.micOn);
      camButton.update(p.camOn);
      placeholder.textContent = t(p.camOn ? 'prejoin.preview.starting' : 'prejoin.preview.off');
      placeholder.hidden = p.camOn && p.hasVideo;
      deviceNote.textContent = p.error;
      deviceNote.hidden = !p.error;
      devices.update();
    });
    const devices = new PrejoinDevices(preview);
    /** @type {{ name: 'prejoin', preview: DevicePreview, devices: PrejoinDevices, timer: ReturnType<typeof setTimeout> | null }} */
    const prejoin = { name: 'prejoin', preview, devices, timer: null };
    if (!this.moveTo(prejoin)) return;
    const micButton = toggleButton({
      testid: 'prejoin-mic', iconOn: 'mic', iconOff: 'mic-off', text: t('media.mic'), name: t('media.mic.name'),
      labelOn: t('media.mic.on'), labelOff: t('media.mic.off'), onclick: () => preview.setMic(!preview.micOn),
    });
    const camButton = toggleButton({
      testid: 'prejoin-camera', iconOn: 'cam', iconOff: 'cam-off', text: t('media.cam'), name: t('media.cam.name'),
      labelOn: t('media.cam.on'), labelOff: t('media.cam.off'), onclick: () => preview.setCamera(!preview.camOn),
    });
    micButton.update(preview.micOn);
    camButton.update(preview.camOn);
    deviceNote.hidden = true;

    const name = h('input', {
      name: 'display_name', type: 'text', required: true, maxlength: 64, autocomplete: 'nickname',
      placeholder: t('name.placeholder'), value: rememberedName(), testid: 'prejoin-name',
    });
    const error = h('p', { class: 'form-error', role: 'alert', testid: 'prejoin-error' });
    const full = h('p', { class: 'prejoin-full', id: 'prejoin-full', role: 'status', testid: 'prejoin-full' });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-wide', testid: 'prejoin-submit' },
      t('prejoin.submit'));
    const count = h('p', { class: 'prejoin-count', testid: 'prejoin-count' });
    let isFull = false;
    let busy = false;
    const showPlaces = (current, place) => {
      count.textContent = t('prejoin.count', {
        count: current.participant_count ?? 0, max: current.max_participants ?? '?',
      });
      isFull = !place;
      full.textContent = isFull ? t('prejoin.full') : '';
      full.hidden = !isFull;
      submit.disabled = isFull || busy;
      if (isFull) submit.setAttribute('aria-describedby', full.id);
      else submit.removeAttribute('aria-describedby');
    };
    // The room is looked at again until the page leaves pre-join: often while it is full (Join
    // opens once a place frees up), every PREJOIN_POLL_MS otherwise, which keeps the presence of
    // a member waiting here (see PREJOIN_POLL_MS). An ended meeting says so at once.
    const watchRoom = () => {
      prejoin.timer = setTimeout(async () => {
        try {
          const fresh = await api.getRoom(this.roomId);
          if (this.state !== prejoin) return;
          if (fresh.status === 'ended') {
            this.finish('ended');
            return;
          }
          this.room = fresh;
          const place = await this.hasPlace(fresh);
          if (this.state !== prejoin) return;
          showPlaces(fresh, place);
        } catch {
          // Looked at again on the next round; Join itself reports what went wrong.
        }
        if (this.state === prejoin) watchRoom();
      }, isFull ? FULL_POLL_MS : PREJOIN_POLL_MS);
    };
    showPlaces(room, hasPlace);
    watchRoom();
    // One form for the whole card. Its parts follow the keyboard's order: the name, then the
    // microphone and camera of the preview, then Join and the way back; CSS puts the preview on
    // the left on wide screens.
    const form = h(
      'form',
      { class: 'prejoin card', testid: 'prejoin' },
      h('div', { class: 'prejoin-info' },
        h('h1', { class: 'prejoin-title' }, room.title),
        room.description ? h('p', { class: 'prejoin-description' }, room.description) : null,
        room.e2ee ? h('p', { class: 'prejoin-e2ee', testid: 'prejoin-e2ee' },
          h('span', { class: 'icon icon-lock', 'aria-hidden': 'true' }), t('room.status.e2ee')) : null,
        room.e2ee && !this.cipher
          ? h('p', { class: 'e2ee-notice', role: 'alert', testid: 'e2ee-notice' }, this.keyProblem()) : null,
        count,
        full,
        prejoinNotes(room),
        h('label', { class: 'field' }, h('span', { class: 'field-label' }, t('prejoin.name')), name),
        error),
      h('div', { class: 'preview' },
        h('div', { class: 'preview-frame' }, video, placeholder,
          h('div', { class: 'preview-controls' }, micButton, camButton)),
        deviceNote,
        devices.element),
      h('div', { class: 'prejoin-actions' },
        submit,
        h('button', { type: 'button', class: 'link-btn prejoin-back', testid: 'prejoin-back',
          onclick: () => this.navigate('/') }, t('prejoin.back'))),
    );
    name.addEventListener('input', () => {
      error.textContent = '';
      name.setCustomValidity('');
    });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      name.value = name.value.trim();
      if (!name.value) name.setCustomValidity(t('name.required'));
      if (!form.reportValidity() || isFull) return;
      submit.disabled = true;
      busy = true;
      submit.textContent = t('prejoin.busy');
      await this.join(prejoin, name.value, error);
      busy = false;
      if (this.state === prejoin) {
        submit.disabled = isFull;
        submit.textContent = t('prejoin.submit');
      }
    });

    mount(this.root, form);
    name.focus();
    preview.start();
  }

  // --- step 3: join ------------------------------------------------------------------------

  /** POST join from the pre-join state; errors end on a screen or show inline in `errorLine`. */
  async join(prejoin, displayName, errorLine) {
    let result;
    try {
      result = await api.joinRoom(this.roomId, displayName);
    } catch (error) {
      if (this.state !== prejoin || this.finishFor(error)) return;
      if (error instanceof ApiError && error.code === 'room_locked') {
        errorLine.textContent = t('prejoin.locked');
        return;
      }
      const field = error instanceof ApiError ? error.errors.find((e) => e.field === 'display_name') : null;
      errorLine.textContent = field?.message || (error instanceof ApiError ? error.describe() : t('error.network'));
      return;
    }
    if (this.state !== prejoin) return;
    rememberName(displayName);
    const choices = { wantMic: prejoin.preview.micOn, wantCamera: prejoin.preview.camOn };
    if (result.waiting !== null) this.waitInLobby(displayName, choices);
    else this.enter(result.self, choices);
  }

  /** Into the meeting with a membership (join answered 200 or 201). */
  enter(self, choices) {
    rememberMembership(this.roomId, self.id);
    rememberEntered(this.roomId);
    const meeting = new Meeting(this, self, choices);
    if (this.moveTo({ name: 'meeting', meeting })) meeting.start();
  }

  /**
   * The room's lobby answered 202: the page waits, repeating the same join, until a host
   * admits (the meeting opens), denies ("the host did not let you in") or the room changes.
   */
  waitInLobby(displayName, choices) {
    /** @type {{ name: 'lobby', timer: ReturnType<typeof setTimeout> | null }} */
    const lobby = { name: 'lobby', timer: null };
    if (!this.moveTo(lobby)) return;
    document.title = `${this.room?.title ?? ''} · ${t('app.name')}`;
    mount(
      this.root,
      h('section', { class: 'screen card lobby-wait', testid: 'lobby-waiting', role: 'status' },
        h('div', { class: 'screen-icon screen-icon-wait', 'aria-hidden': 'true' }),
        h('h1', { class: 'screen-title' }, t('lobby.waiting.title')),
        h('p', { class: 'screen-text' }, t('lobby.waiting.text')),
        h('div', { class: 'lobby-wait-spinner' }, h('span', { class: 'spinner', 'aria-hidden': 'true' })),
        h('div', { class: 'screen-actions' },
          h('button', { type: 'button', class: 'btn', testid: 'lobby-cancel', onclick: () => this.navigate('/') },
            t('lobby.cancel')))),
    );
    const again = (delay) => {
      lobby.timer = setTimeout(async () => {
        let result;
        try {
          result = await api.joinRoom(this.roomId, displayName);
        } catch (error) {
          if (this.state !== lobby) return;
          if (error instanceof ApiError && error.code === 'room_locked') this.open(); // pre-join says so
          else if (error instanceof ApiError && error.code === 'rate_limited') again((error.retryAfter || 5) * 1000);
          else if (!this.finishFor(error)) again(LOBBY_POLL_MS); // no answer, 503: keep waiting
          return;
        }
        if (this.state !== lobby) return;
        if (result.waiting !== null) again(LOBBY_POLL_MS);
        else this.enter(result.self, choices);
      }, delay);
    };
    again(LOBBY_POLL_MS);
  }

  // --- the way out -------------------------------------------------------------------------

  /** The Leave button: tells the server (for a few seconds at most) and goes home. */
  async leave() {
    const meeting = this.state.name === 'meeting' ? this.state.meeting : null;
    if (!this.moveTo({ name: 'leaving' })) return;
    await Promise.race([
      // Deletions still in their undo time are sent first, while this is still a member.
      (meeting?.flushed ?? Promise.resolve()).then(() => api.leaveRoom(this.roomId)).catch(() => {}),
      new Promise((resolve) => setTimeout(resolve, LEAVE_TIMEOUT_MS)),
    ]);
    this.navigate('/');
  }

  /**
   * Asked before the app goes elsewhere (the logo, Back): in the meeting the person confirms
   * first, since going away is leaving it; anywhere else the page just goes.
   * @returns {true | Promise<boolean>}
   */
  mayLeave() {
    if (this.state.name !== 'meeting') return true;
    if (!this.asking) {
      this.asking = confirmDialog({
        title: t('confirm.leave.title'), text: t('confirm.leave.text'), confirm: t('room.leave'),
        cancel: t('confirm.stay'), danger: false,
      }).finally(() => { this.asking = null; });
    }
    return this.asking;
  }

  /** Navigating away inside the app (Back, home link) is leaving the meeting. */
  destroy() {
    const meeting = this.state.name === 'meeting' ? this.state.meeting : null;
    this.moveTo({ name: 'closed' });
    if (meeting) meeting.flushed.then(() => api.leaveRoom(this.roomId)).catch(() => {});
  }
}

/**
 * The meeting itself: the caller's membership, the participant list, the chat and its socket,
 * the media stage. It lives exactly as long as the session's `meeting` state holds it.
 */
class Meeting {
  constructor(session, self, { wantMic, wantCamera }) {
    this.session = session;
    this.roomId = session.roomId;
    this.room = session.room;
    this.self = self;
    /** When the membership was last renewed after a 4403 (a second 4403 soon after is a ban). */
    this.rejoinedAt = 0;
    this.pollTimer = null;
    this.chatPollTimer = null;
    this.chatPollPausedUntil = 0;
    /** Participant frames received so far (a list fetched across one is stale). */
    this.peopleFrames = 0;
    /**
     * Settles once the chat's pending deletions are sent (set when the meeting stops).
     * @type {Promise<unknown>}
     */
    this.flushed = Promise.resolve();
    this.e2ee = Boolean(this.room.e2ee);
    /** Something of someone else's was decrypted with this link's key: the key is right. */
    this.keyWorks = false;
    this.settings = new RoomSettings({ roomId: this.roomId, room: this.room, onRoom: (room) => this.applyRoom(room) });
    this.lobby = new LobbyPanel({ roomId: this.roomId });
    this.handButton = toggleButton({
      testid: 'toggle-hand', iconOn: 'hand', iconOff: 'hand', text: t('media.hand'), name: t('media.hand.name'),
      labelOn: t('media.hand.on'), labelOff: t('media.hand.off'), onclick: () => this.toggleHand(),
    });
    this.handButton.update(false);
    this.e2eeNotice = h('p', { class: 'e2ee-notice', role: 'alert', testid: 'e2ee-notice', hidden: true });
    this.people = new ParticipantList({
      self,
      maxParticipants: this.room.max_participants,
      onModerate: (person, kind) => this.moderate(person, kind),
      onChange: () => this.onPeopleChanged(),
    });
    this.people.upsert(publicView(self));
    const cipher = this.e2ee ? session.cipher : null;
    this.chat = new ChatPanel({
      roomId: this.roomId, self, send: (frame) => this.socket.send(frame),
      e2ee: this.e2ee, cipher, onDecryption: (ok) => this.keyEvidence(ok),
      onNew: () => {
        this.countUnread();
        // A message that arrives while the person looks elsewhere gets a short note.
        if (document.hidden) chime('message');
      },
      onClose: () => this.setChatOpen(false, { focus: true }),
    });
    // The chat is open beside the video on wide screens, and a closed sheet on phones. Messages
    // of others that arrive while it is closed, or while the tab is hidden, are unread: counted
    // on its toggle and in the tab's title.
    this.phone = window.matchMedia(PHONE_QUERY);
    this.chatOpen = !this.phone.matches;
    this.unread = 0;
    this.chatBadge = h('span', { class: 'toggle-badge', 'aria-hidden': 'true', testid: 'chat-badge', hidden: true });
    this.chatUnread = h('span', { class: 'sr-only' });
    this.chatButton = h('button', {
      type: 'button', class: 'toggle toggle-chat', testid: 'toggle-chat', 'aria-controls': this.chat.element.id,
      onclick: () => this.setChatOpen(!this.chatOpen, { focus: true }),
    }, h('span', { class: 'icon icon-chat', 'aria-hidden': 'true' }), h('span', { class: 'toggle-caption' }, t('room.chat')),
    this.chatUnread, this.chatBadge);
    this.onVisibility = () => {
      if (!document.hidden && this.chatOpen) this.markRead();
    };
    this.onPhoneChange = () => this.setChatOpen(!this.phone.matches);
    this.onKey = (event) => this.shortcut(event);
    this.shortcutsButton = h('button', { type: 'button', class: 'btn btn-small shortcuts-button', testid: 'shortcuts-button',
      'aria-label': t('shortcuts.button'), title: t('shortcuts.button'), 'aria-keyshortcuts': '?',
      onclick: () => this.showShortcuts() }, '?');
    this.chatButton.setAttribute('aria-keyshortcuts', 'C');
    this.handButton.setAttribute('aria-keyshortcuts', 'H');
    // Camera, microphone and speaker of the live call, and the Sounds switch (devices.js).
    this.devicesButton = h('button', {
      type: 'button', class: 'toggle toggle-devices', testid: 'devices-button', 'aria-haspopup': 'dialog',
      title: t('devices.title'), onclick: () => openDevicesDialog({ stage: this.stage, sounds: soundsSwitch().row }),
    }, h('span', { class: 'icon icon-devices', 'aria-hidden': 'true' }), h('span', { class: 'toggle-caption' }, t('devices.button')));
    this.chat.element.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && this.phone.matches && this.chatOpen && !event.defaultPrevented) {
        this.setChatOpen(false, { focus: true });
      }
    });
    // One "reconnecting" line for video and chat together, at the top of the meeting.
    this.banner = new ReconnectBanner();
    this.stage = new MediaStage({
      roomId: this.roomId,
      selfName: self.display_name,
      wantMic,
      wantCamera,
      onActiveSpeakers: (ids) => this.people.setSpeaking(ids),
      // The media key is the room key itself: livekit-client derives its frame key from it
      // with HKDF and its own salt, unlike the chat key (e2ee.js).
      e2ee: this.e2ee ? { key: cipher ? session.key.bytes : null } : null,
      onUndecryptable: () => this.keyEvidence(false),
      onDecrypted: () => this.keyEvidence(true),
      onReconnecting: (away) => this.banner.set('video', away),
    });
    this.stage.setHands(this.people.raisedHands());
    this.stage.micButton.setAttribute('aria-keyshortcuts', 'M');
    this.stage.camButton.setAttribute('aria-keyshortcuts', 'V');
    if (this.e2ee && !cipher) this.showKeyNotice(session.keyProblem());
    this.socket = new ChatSocket({
      roomId: this.roomId,
      lastSeenId: () => this.chat.lastSeenId(),
      onFrame: (frame) => this.live && this.onFrame(frame),
      onStatus: (state) => {
        this.chat.setStatus(state);
        this.banner.set('chat', state === 'reconnecting');
      },
      onFinal: (code) => this.live && this.onSocketFinal(code),
    });
  }

  /** Whether this meeting is still what the page shows. */
  get live() {
    const state = this.session.state;
    return state.name === 'meeting' && state.meeting === this;
  }

  start() {
    this.render();
    this.refreshParticipants();
    // The history comes over REST at once, whether or not the socket ever gets through.
    this.chat.loadHistory();
    this.socket.connect();
    this.stage.start();
    this.pollTimer = setInterval(() => this.pollWhileOffline(), OFFLINE_POLL_MS);
    this.chatPollTimer = setInterval(() => this.pollChatWhileOffline(), CHAT_POLL_MS);
    document.addEventListener('visibilitychange', this.onVisibility);
    this.phone.addEventListener('change', this.onPhoneChange);
    document.addEventListener('keydown', this.onKey);
  }

  // --- keyboard shortcuts ------------------------------------------------------------------

  /** M, V, C, H and ?, when the focus is not in a text field and no dialog is open. */
  shortcut(event) {
    if (!this.live || event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.isComposing
      || event.repeat || isTextField(event.target) || document.querySelector('dialog[open]')) return;
    if (event.key === '?') {
      event.preventDefault();
      this.showShortcuts();
      return;
    }
    if (event.shiftKey) return;
    const press = (button) => {
      if (!button.disabled && !button.hidden) button.click();
    };
    switch (event.code) {
      case 'KeyM': press(this.stage.micButton); break;
      case 'KeyV': press(this.stage.camButton); break;
      case 'KeyC': this.setChatOpen(!this.chatOpen, { focus: true }); break;
      case 'KeyH': press(this.handButton); break;
      default: return;
    }
    event.preventDefault();
  }

  showShortcuts() {
    const rows = [...SHORTCUTS, { key: '?', label: 'shortcuts.help' }].map(({ key, label }) => [
      h('dt', {}, h('kbd', { class: 'kbd' }, key)), h('dd', {}, t(label))]);
    return infoDialog({
      title: t('shortcuts.title'),
      body: h('div', {}, h('dl', { class: 'shortcuts' }, rows), h('p', { class: 'dialog-text' }, t('shortcuts.note'))),
      close: t('shortcuts.close'),
      testid: 'shortcuts-dialog',
    });
  }

  // --- the chat's place and its unread messages ----------------------------------------------

  /** Opens or closes the chat (a panel beside the video, a sheet on phones). */
  setChatOpen(open, { focus = false } = {}) {
    this.chatOpen = open;
    this.roomElement?.classList.toggle('chat-open', open);
    this.chatButton.setAttribute('aria-expanded', open ? 'true' : 'false');
    if (open) {
      if (!document.hidden) this.markRead();
      this.chat.scrollToBottom();
      if (focus) this.chat.input.focus();
    } else if (focus) {
      this.chatButton.focus();
    }
  }

  countUnread() {
    if (this.chatOpen && !document.hidden) return;
    this.unread += 1;
    this.showUnread();
  }

  markRead() {
    if (this.unread === 0) return;
    this.unread = 0;
    this.showUnread();
  }

  /** The count on the chat toggle, in its name, and in front of the tab's title. */
  showUnread() {
    const count = this.unread;
    this.chatBadge.textContent = count > 99 ? '99+' : String(count);
    this.chatBadge.hidden = count === 0;
    this.chatUnread.textContent = count ? `(${t('chat.unread', { count })})` : '';
    this.showTitle();
  }

  showTitle() {
    if (!this.live) return;
    const title = `${this.room.title} · ${t('app.name')}`;
    document.title = this.unread ? `(${this.unread}) ${title}` : title;
  }

  /** Stops the socket, LiveKit and the camera. Does not tell the server anything. */
  stop() {
    closeDialogs();
    document.removeEventListener('keydown', this.onKey);
    document.removeEventListener('visibilitychange', this.onVisibility);
    this.phone.removeEventListener('change', this.onPhoneChange);
    clearInterval(this.pollTimer);
    clearInterval(this.chatPollTimer);
    this.socket.close();
    this.stage.stop();
    this.flushed = this.chat.destroy();
  }

  /** New messages over REST while the socket is not ready (blocked by a proxy, reconnecting). */
  async pollChatWhileOffline() {
    if (!this.live || this.socket.isReady || Date.now() < this.chatPollPausedUntil) return;
    try {
      await this.chat.catchUp();
    } catch (error) {
      if (!this.live || !(error instanceof ApiError)) return;
      if (error.status === 429) this.chatPollPausedUntil = Date.now() + (error.retryAfter || 5) * 1000;
      else if (error.code === 'room_ended') this.session.finish('ended');
      else if (error.code === 'room_not_found') this.session.finish('not-found');
      // not_a_participant: the membership check of pollWhileOffline tells a lapse from a ban.
    }
  }

  async pollWhileOffline() {
    if (!this.live || this.socket.isReady) return;
    try {
      const room = await api.getRoom(this.roomId);
      if (!this.live) return;
      if (room.status === 'ended') {
        this.session.finish('ended');
        return;
      }
      this.applyRoom(room);
      this.lobby.refresh();
      const list = await api.listParticipants(this.roomId);
      if (!this.live) return;
      this.people.setAll(list);
      if (!list.some((person) => person.id === this.self.id)) await this.checkMembership();
    } catch (error) {
      if (this.live && error instanceof ApiError && error.code === 'room_not_found') this.session.finish('not-found');
    }
  }

  render() {
    // In an e2ee room the link carries the key in its fragment: whoever gets it can read.
    const key = this.e2ee && this.session.cipher ? keyFragment(this.session.key.text) : '';
    const link = `${location.origin}/r/${this.roomId}${key}`;
    const linkInput = h('input', {
      class: 'share-input', type: 'text', readonly: true, value: link, testid: 'room-link',
      'aria-label': t('room.link'), spellcheck: 'false',
    });
    linkInput.addEventListener('focus', () => linkInput.select());
    const copyLabel = h('span', { class: 'copy-label' }, t('room.copy'));
    const copy = h('button', { type: 'button', class: 'btn btn-small', testid: 'copy-link' },
      h('span', { class: 'icon icon-copy', 'aria-hidden': 'true' }), copyLabel);
    copy.addEventListener('click', () => this.copyLink(link, linkInput, copyLabel));

    const leave = h('button', { type: 'button', class: 'btn btn-danger', testid: 'leave-button' },
      h('span', { class: 'icon icon-leave', 'aria-hidden': 'true' }), h('span', {}, t('room.leave')));
    leave.addEventListener('click', () => {
      leave.disabled = true;
      this.session.leave();
    });
    // Hosts only; in the page while this member is a host (co-hosts come and go).
    const end = h('button', { type: 'button', class: 'btn btn-outline-danger', testid: 'end-button' },
      h('span', { class: 'icon icon-end', 'aria-hidden': 'true' }), h('span', {}, t('room.end')));
    this.endButton = end;
    end.addEventListener('click', async () => {
      end.disabled = true;
      const sure = await confirmDialog({
        title: t('confirm.end.title'), text: t('confirm.end.text'), confirm: t('room.end'), cancel: t('confirm.cancel'),
      });
      if (!sure || !this.live) {
        end.disabled = false;
        return;
      }
      try {
        await api.endRoom(this.roomId);
        if (this.live) this.session.finish('ended');
      } catch (error) {
        end.disabled = false;
        if (!this.live) return;
        if (error instanceof ApiError && error.code === 'room_ended') this.session.finish('ended');
        else toast(error instanceof ApiError ? error.describe() : t('error.network'), 'error');
      }
    });

    // The title takes the focus once the meeting is shown (the pre-join form it replaces had
    // it), so keyboard and screen reader users start inside the room, not at the page's top.
    const title = h('h1', { class: 'room-title', testid: 'room-title', tabindex: '-1', title: this.room.title },
      this.room.title);
    this.titleElement = title;
    this.sessionControls = h('div', { class: 'controls-session' }, this.shortcutsButton, end, leave);
    this.roomElement = h('div', { class: 'room', testid: 'room' });
    mount(
      this.session.root,
      mount(this.roomElement,
        h('header', { class: 'room-header' },
          h('div', { class: 'room-heading' },
            h('div', { class: 'room-title-row' }, title, this.settings.status),
            this.room.description ? h('p', { class: 'room-description' }, this.room.description) : null),
          h('div', { class: 'share' }, linkInput, copy, this.settings.button)),
        this.banner.element,
        this.e2eeNotice,
        h('div', { class: 'room-body' },
          h('div', { class: 'room-main' },
            this.stage.element,
            h('div', { class: 'controls' },
              h('div', { class: 'controls-media' }, this.stage.controls, this.devicesButton, this.handButton,
                this.chatButton),
              this.sessionControls)),
          h('aside', { class: 'room-side' },
            this.lobby.element, this.settings.panel, this.people.element, this.chat.element))),
    );
    this.setChatOpen(this.chatOpen);
    this.applyRole();
    title.focus({ preventScroll: true });
  }

  /** Shows or hides what only hosts have: End for all, the settings, the waiting requests. */
  applyRole() {
    const isHost = this.self.role === 'host';
    this.settings.setHost(isHost);
    this.lobby.setActive(isHost);
    if (!this.endButton) return;
    if (isHost && !this.endButton.isConnected) this.sessionControls.prepend(this.endButton);
    else if (!isHost) this.endButton.remove();
  }

  /** The caller's role changed (promoted, demoted, made host by a hand-over). */
  setRole(role) {
    if (!role || role === this.self.role) return;
    this.self = { ...this.self, role };
    this.people.setSelf(this.self);
    this.chat.setSelf(this.self);
    this.applyRole();
    if (role === 'host') {
      this.lobby.refresh();
      toast(t('room.youPromoted'));
    } else {
      toast(t('room.youDemoted'));
    }
  }

  /** The room as a host changed it (room.updated, or the answer to our own PATCH). */
  applyRoom(room) {
    if (!room || !this.live) return;
    this.room = { ...this.room, ...room };
    this.session.room = this.room;
    this.settings.setRoom(this.room);
    if (this.titleElement && room.title) {
      this.titleElement.textContent = room.title;
      this.titleElement.title = room.title;
      this.showTitle();
    }
    if (room.max_participants) {
      this.people.maxParticipants = room.max_participants;
      this.people.render();
    }
  }

  /** After every change of the list: hands on the tiles, own hand button, own role. */
  onPeopleChanged() {
    if (!this.people) return; // the list's first render, inside its constructor
    this.stage?.setHands(this.people.raisedHands());
    const me = this.people.get(this.self.id);
    this.handButton.update(Boolean(me?.hand_raised_at));
    if (me?.role && me.role !== this.self.role && this.chat) this.setRole(me.role);
  }

  async toggleHand() {
    const raise = !this.people.get(this.self.id)?.hand_raised_at;
    this.handButton.disabled = true;
    try {
      const person = await api.raiseHand(this.roomId, raise);
      if (this.live) this.people.upsert(person);
    } catch (error) {
      if (this.live) toast(error instanceof ApiError ? error.describe() : t('error.network'), 'error');
    } finally {
      this.handButton.disabled = false;
    }
  }

  showKeyNotice(text) {
    this.e2eeNotice.textContent = text;
    this.e2eeNotice.hidden = false;
  }

  /**
   * Whether something of someone else's (a chat message, a video) could be decrypted with this
   * link's key. Failures alone mean the key is wrong (or missing): the page says how to get the
   * right one. Once anything decrypts, the key is right, and a failure is the other person's.
   */
  keyEvidence(ok) {
    if (!this.e2ee || !this.session.cipher || !this.live) return;
    if (ok) {
      this.keyWorks = true;
      this.e2eeNotice.hidden = true;
    } else if (!this.keyWorks) {
      this.showKeyNotice(t('e2ee.wrongKey'));
    }
  }

  async copyLink(link, input, label) {
    try {
      if (!navigator.clipboard?.writeText) throw new Error('no clipboard');
      await navigator.clipboard.writeText(link);
      label.textContent = t('room.copied');
      announce(t('room.copied'));
      setTimeout(() => { label.textContent = t('room.copy'); }, 2000);
    } catch {
      // Without clipboard access the link stays visible and selected in its box.
      input.focus();
      input.select();
      toast(t('room.copy.manual'));
    }
  }

  async refreshParticipants() {
    try {
      // A list asked for before a join or leave frame may arrive after it: it would drop the
      // newcomer (or bring back who left) for good, so such a list is asked for again.
      for (let round = 0; round < 3; round += 1) {
        const framesBefore = this.peopleFrames;
        const list = await api.listParticipants(this.roomId);
        if (!this.live) return;
        if (framesBefore === this.peopleFrames || round === 2) {
          this.people.setAll(list);
          return;
        }
      }
    } catch (error) {
      // A failed refresh is repaired by the next one; only a vanished room ends the visit.
      if (this.live && error instanceof ApiError && error.code === 'room_not_found') this.session.finish('not-found');
    }
  }

  onFrame(frame) {
    switch (frame.type) {
      case 'ready':
        if (frame.participant?.id === this.self.id) this.setRole(frame.participant.role);
        this.refreshParticipants();
        this.chat.onReady();
        this.lobby.refresh();
        break;
      case 'participant.joined':
        this.peopleFrames += 1;
        // Somebody new arriving (not a reconnect of somebody listed, nor this page itself).
        if (frame.participant?.id && frame.participant.id !== this.self.id && !this.people.get(frame.participant.id)) {
          chime('join');
        }
        this.people.upsert(frame.participant);
        break;
      case 'participant.updated':
        this.peopleFrames += 1;
        if (frame.participant?.id) this.people.upsert(frame.participant);
        break;
      case 'room.updated':
        this.applyRoom(frame.room);
        break;
      case 'lobby.requested':
        this.lobby.add(frame.request);
        break;
      case 'lobby.resolved':
        this.lobby.remove(frame.request_id);
        break;
      case 'participant.left':
        this.peopleFrames += 1;
        this.people.remove(frame.participant?.id);
        break;
      case 'room.ended':
        this.session.finish('ended');
        break;
      default:
        this.chat.handleFrame(frame);
    }
  }

  async onSocketFinal(code) {
    if (code === CLOSE_ROOM_ENDED) this.session.finish('ended');
    else if (code === CLOSE_NOT_FOUND) this.session.finish('not-found');
    else if (code === CLOSE_FORBIDDEN) await this.checkMembership();
  }

  /**
   * 4403 means "kicked" or "not a participant": a membership that lapsed (the browser was
   * away too long) can simply be renewed, a ban cannot. Joining again tells the two apart.
   */
  async checkMembership() {
    const recentlyRejoined = Date.now() - this.rejoinedAt < 30000;
    if (recentlyRejoined) {
      this.session.finish('kicked');
      return;
    }
    try {
      const { self, waiting } = await api.joinRoom(this.roomId, this.self.display_name);
      if (!this.live) return;
      if (waiting !== null) {
        // The membership lapsed, and the room's lobby is on now: wait like anyone new.
        this.session.waitInLobby(this.self.display_name, { wantMic: this.stage.wantMic, wantCamera: this.stage.wantCamera });
        return;
      }
      this.rejoinedAt = Date.now();
      this.self = self;
      rememberMembership(this.roomId, self.id);
      this.people.setSelf(self);
      this.people.upsert(publicView(self));
      this.chat.setSelf(self);
      if (!this.socket.isReady) this.socket.connect();
    } catch (error) {
      if (!this.live) return;
      if (error instanceof ApiError && error.code === 'room_locked') this.session.open(); // pre-join says so
      else if (!this.session.finishFor(error)) this.session.finish('kicked');
    }
  }

  async moderate(person, kind) {
    // Removing is for good (a ban): asked first.
    if (kind === 'kick') {
      const name = person.display_name || '?';
      const sure = await confirmDialog({
        title: t('confirm.kick.title', { name }), text: t('confirm.kick.text', { name }),
        confirm: t('room.kick'), cancel: t('confirm.cancel'),
      });
      if (!sure || !this.live) return;
    }
    try {
      if (kind === 'kick') {
        await api.kick(this.roomId, person.id);
        if (!this.live) return;
        this.people.remove(person.id);
        toast(t('room.kicked.ok', { name: person.display_name }));
      } else if (kind === 'promote' || kind === 'demote') {
        const updated = kind === 'promote'
          ? await api.promote(this.roomId, person.id) : await api.demote(this.roomId, person.id);
        if (!this.live) return;
        this.people.upsert(updated);
        if (person.id !== this.self.id) {
          toast(t(kind === 'promote' ? 'room.promoted.ok' : 'room.demoted.ok', { name: person.display_name }));
        }
      } else {
        await api.mute(this.roomId, person.id, kind);
        if (this.live) toast(t('room.muted.ok'));
      }
    } catch (error) {
      if (!this.live) return;
      if (error instanceof ApiError && error.code === 'room_ended') this.session.finish('ended');
      else if (error instanceof ApiError && error.code === 'last_host') toast(t('room.lastHost'), 'error');
      else toast(error instanceof ApiError ? error.describe() : t('error.network'), 'error');
    }
  }
}
