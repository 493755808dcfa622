// The room page /r/{room_id}: look the room up, the pre-join step, then the meeting itself.

import {
  api, ApiError, isUuid, rememberedMembership, rememberedName, rememberMembership, rememberName,
} from './api.js';
import { ChatPanel, ChatSocket, CLOSE_FORBIDDEN, CLOSE_NOT_FOUND, CLOSE_ROOM_ENDED } from './chat.js';
import { h, mount, toast } from './dom.js';
import { t } from './i18n.js';
import { DevicePreview, MediaStage, toggleButton } from './media.js';
import { ParticipantList } from './participants.js';
import { showEnded, showError, showFull, showKicked, showNotFound, showRateLimited } from './screens.js';

const LEAVE_TIMEOUT_MS = 3000;
// While the chat socket is down nothing pushes joins, leaves, kicks or the end of the meeting,
// so the page asks for them at this pace until the socket is back.
const OFFLINE_POLL_MS = 10000;
// A full room is looked at again at this pace on pre-join, so Join opens once a place frees up.
const FULL_POLL_MS = 5000;

function loading() {
  return h('div', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }));
}

/** The public fields of the caller's own membership: the secret participant_id stays out. */
function publicView(self) {
  return { id: self.id, display_name: self.display_name, role: self.role, joined_at: self.joined_at };
}

export function renderRoom(root, navigate, roomId) {
  const session = new RoomSession(root, navigate, roomId);
  session.open();
  return () => session.destroy();
}

/**
 * What the page is doing. Each state owns its resources, and leaving a state releases them,
 * so no flag has to be re-checked: an async step goes on only while the state it started in
 * is still the current one.
 *
 *   loading ─► prejoin ─► meeting ─► leaving
 *      ▲          │          │
 *      └── over ◄─┴──────────┘      (any state) ─► closed, when the page goes away
 *
 * @typedef {{ name: 'loading' }
 *   | { name: 'prejoin', preview: DevicePreview, timer: ReturnType<typeof setTimeout> | null }
 *   | { name: 'meeting', meeting: Meeting }
 *   | { name: 'leaving' }
 *   | { name: 'over', cleanup: (() => void) | null }
 *   | { name: 'closed' }} SessionState
 */

/** Releases what a state holds as the session leaves it. */
function release(state) {
  if (state.name === 'prejoin') {
    state.preview.stop();
    clearTimeout(state.timer);
  } else if (state.name === 'meeting') state.meeting.stop();
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
    const over = { name: 'over', cleanup: null };
    if (!this.moveTo(over)) return;
    document.title = t('app.name');
    const retry = () => this.open();
    switch (kind) {
      case 'not-found': showNotFound(this.root, this.navigate); break;
      case 'ended': showEnded(this.root, this.navigate); break;
      case 'kicked': showKicked(this.root, this.navigate); break;
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
    else if (error.code === 'banned') this.finish('kicked');
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
    });
    /** @type {{ name: 'prejoin', preview: DevicePreview, timer: ReturnType<typeof setTimeout> | null }} */
    const prejoin = { name: 'prejoin', preview, timer: null };
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
    const showPlaces = (current, place) => {
      count.textContent = t('prejoin.count', {
        count: current.participant_count ?? 0, max: current.max_participants ?? '?',
      });
      isFull = !place;
      full.textContent = isFull ? t('prejoin.full') : '';
      full.hidden = !isFull;
      submit.disabled = isFull;
      if (isFull) submit.setAttribute('aria-describedby', full.id);
      else submit.removeAttribute('aria-describedby');
    };
    // While full, the room is looked at again until a place frees up (or the meeting ends).
    const watchPlaces = () => {
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
        if (this.state === prejoin && isFull) watchPlaces();
      }, FULL_POLL_MS);
    };
    showPlaces(room, hasPlace);
    if (isFull) watchPlaces();
    const form = h(
      'form',
      { class: 'prejoin-form' },
      h('h1', { class: 'prejoin-title' }, room.title),
      room.description ? h('p', { class: 'prejoin-description' }, room.description) : null,
      count,
      full,
      h('label', { class: 'field' }, h('span', { class: 'field-label' }, t('prejoin.name')), name),
      error,
      submit,
      h('button', { type: 'button', class: 'link-btn prejoin-back', onclick: () => this.navigate('/') },
        t('prejoin.back')),
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
      submit.textContent = t('prejoin.busy');
      await this.join(prejoin, name.value, error);
      if (this.state === prejoin) {
        submit.disabled = isFull;
        submit.textContent = t('prejoin.submit');
      }
    });

    mount(
      this.root,
      h('div', { class: 'prejoin card', testid: 'prejoin' },
        h('div', { class: 'preview' },
          h('div', { class: 'preview-frame' }, video, placeholder,
            h('div', { class: 'preview-controls' }, micButton, camButton)),
          deviceNote),
        form),
    );
    name.focus();
    preview.start();
  }

  // --- step 3: join ------------------------------------------------------------------------

  /** POST join from the pre-join state; errors end on a screen or show inline in `errorLine`. */
  async join(prejoin, displayName, errorLine) {
    let self;
    try {
      ({ self } = await api.joinRoom(this.roomId, displayName));
    } catch (error) {
      if (this.state !== prejoin || this.finishFor(error)) return;
      const field = error instanceof ApiError ? error.errors.find((e) => e.field === 'display_name') : null;
      errorLine.textContent = field?.message || (error instanceof ApiError ? error.describe() : t('error.network'));
      return;
    }
    if (this.state !== prejoin) return;
    rememberName(displayName);
    rememberMembership(this.roomId, self.id);
    const meeting = new Meeting(this, self, {
      wantMic: prejoin.preview.micOn,
      wantCamera: prejoin.preview.camOn,
    });
    if (this.moveTo({ name: 'meeting', meeting })) meeting.start();
  }

  // --- the way out -------------------------------------------------------------------------

  /** The Leave button: tells the server (for a few seconds at most) and goes home. */
  async leave() {
    if (!this.moveTo({ name: 'leaving' })) return;
    await Promise.race([
      api.leaveRoom(this.roomId).catch(() => {}),
      new Promise((resolve) => setTimeout(resolve, LEAVE_TIMEOUT_MS)),
    ]);
    this.navigate('/');
  }

  /** Navigating away inside the app (Back, home link) is leaving the meeting. */
  destroy() {
    const wasInMeeting = this.state.name === 'meeting';
    this.moveTo({ name: 'closed' });
    if (wasInMeeting) api.leaveRoom(this.roomId).catch(() => {});
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
    this.people = new ParticipantList({
      self,
      maxParticipants: this.room.max_participants,
      onModerate: (person, kind) => this.moderate(person, kind),
    });
    this.people.upsert(publicView(self));
    this.chat = new ChatPanel({ roomId: this.roomId, self, send: (frame) => this.socket.send(frame) });
    this.stage = new MediaStage({
      roomId: this.roomId,
      selfName: self.display_name,
      wantMic,
      wantCamera,
      onActiveSpeakers: (ids) => this.people.setSpeaking(ids),
    });
    this.socket = new ChatSocket({
      roomId: this.roomId,
      lastSeenId: () => this.chat.lastSeenId(),
      onFrame: (frame) => this.live && this.onFrame(frame),
      onStatus: (state) => this.chat.setStatus(state),
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
    this.socket.connect();
    this.stage.start();
    this.pollTimer = setInterval(() => this.pollWhileOffline(), OFFLINE_POLL_MS);
  }

  /** Stops the socket, LiveKit and the camera. Does not tell the server anything. */
  stop() {
    clearInterval(this.pollTimer);
    this.socket.close();
    this.stage.stop();
    this.chat.destroy();
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
      const list = await api.listParticipants(this.roomId);
      if (!this.live) return;
      this.people.setAll(list);
      if (!list.some((person) => person.id === this.self.id)) await this.checkMembership();
    } catch (error) {
      if (this.live && error instanceof ApiError && error.code === 'room_not_found') this.session.finish('not-found');
    }
  }

  render() {
    const link = `${location.origin}/r/${this.roomId}`;
    const linkInput = h('input', {
      class: 'share-input', type: 'text', readonly: true, value: link, testid: 'room-link',
      'aria-label': t('room.link'), spellcheck: 'false',
    });
    linkInput.addEventListener('focus', () => linkInput.select());
    const copyLabel = h('span', { class: 'copy-label' }, t('room.copy'));
    const copy = h('button', { type: 'button', class: 'btn btn-small', testid: 'copy-link' },
      h('span', { class: 'icon icon-copy', 'aria-hidden': 'true' }), copyLabel);
    copy.addEventListener('click', () => this.copyLink(link, linkInput, copyLabel));

    const isHost = this.self.role === 'host';
    const leave = h('button', { type: 'button', class: 'btn btn-danger', testid: 'leave-button' },
      h('span', { class: 'icon icon-leave', 'aria-hidden': 'true' }), h('span', {}, t('room.leave')));
    leave.addEventListener('click', () => {
      leave.disabled = true;
      this.session.leave();
    });
    const end = isHost
      ? h('button', { type: 'button', class: 'btn btn-outline-danger', testid: 'end-button' },
        h('span', { class: 'icon icon-end', 'aria-hidden': 'true' }), h('span', {}, t('room.end')))
      : null;
    end?.addEventListener('click', async () => {
      end.disabled = true;
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
    mount(
      this.session.root,
      h('div', { class: 'room', testid: 'room' },
        h('header', { class: 'room-header' },
          h('div', { class: 'room-heading' },
            title,
            this.room.description ? h('p', { class: 'room-description' }, this.room.description) : null),
          h('div', { class: 'share' }, linkInput, copy)),
        h('div', { class: 'room-body' },
          h('div', { class: 'room-main' },
            this.stage.element,
            h('div', { class: 'controls' },
              h('div', { class: 'controls-media' }, this.stage.controls),
              h('div', { class: 'controls-session' }, end, leave))),
          h('aside', { class: 'room-side' }, this.people.element, this.chat.element))),
    );
    title.focus({ preventScroll: true });
  }

  async copyLink(link, input, label) {
    try {
      if (!navigator.clipboard?.writeText) throw new Error('no clipboard');
      await navigator.clipboard.writeText(link);
      label.textContent = t('room.copied');
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
      const list = await api.listParticipants(this.roomId);
      if (this.live) this.people.setAll(list);
    } catch (error) {
      // A failed refresh is repaired by the next one; only a vanished room ends the visit.
      if (this.live && error instanceof ApiError && error.code === 'room_not_found') this.session.finish('not-found');
    }
  }

  onFrame(frame) {
    switch (frame.type) {
      case 'ready':
        this.refreshParticipants();
        this.chat.onReady();
        break;
      case 'participant.joined':
        this.people.upsert(frame.participant);
        break;
      case 'participant.left':
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
      const { self } = await api.joinRoom(this.roomId, this.self.display_name);
      if (!this.live) return;
      this.rejoinedAt = Date.now();
      this.self = self;
      rememberMembership(this.roomId, self.id);
      this.people.setSelf(self);
      this.people.upsert(publicView(self));
      this.chat.setSelf(self);
      if (!this.socket.isReady) this.socket.connect();
    } catch (error) {
      if (this.live && !this.session.finishFor(error)) this.session.finish('kicked');
    }
  }

  async moderate(person, kind) {
    try {
      if (kind === 'kick') {
        await api.kick(this.roomId, person.id);
        if (!this.live) return;
        this.people.remove(person.id);
        toast(t('room.kicked.ok', { name: person.display_name }));
      } else {
        await api.mute(this.roomId, person.id, kind);
        if (this.live) toast(t('room.muted.ok'));
      }
    } catch (error) {
      if (!this.live) return;
      if (error instanceof ApiError && error.code === 'room_ended') this.session.finish('ended');
      else toast(error instanceof ApiError ? error.describe() : t('error.network'), 'error');
    }
  }
}
