// Room controls (docs/api.md, section 16): the room's status chips, the hosts' settings panel
// (lock, waiting room) and the hosts' waiting-room requests with Admit and Deny.

import { api, ApiError } from './api.js';
import { h, toast } from './dom.js';
import { t } from './i18n.js';

// One switch for every sound of the meeting. The key is the one of the knock chime it grew from,
// so an "off" chosen before still holds.
const SOUND_KEY = 'veche.lobby_sound';
// The notes of each sound (Hz, one after another): a knock rings twice, a newcomer gets a soft
// rising pair, a message read elsewhere one short note.
const SOUNDS = { knock: [660, 880], join: [523, 659], message: [784] };
let ids = 0;

function uid(prefix) {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** Whether the meeting plays its sounds (knocks, newcomers, hidden-tab messages; kept in this browser). */
export function soundsOn() {
  try {
    return window.localStorage.getItem(SOUND_KEY) !== 'off';
  } catch {
    return true;
  }
}

export function setSounds(on) {
  try {
    window.localStorage.setItem(SOUND_KEY, on ? 'on' : 'off');
  } catch {
    // Not kept: the choice lasts as long as the page.
  }
}

let audio = null;

/**
 * A short, quiet chime made with WebAudio (no file to load), unless sounds are off; never throws.
 * @param {'knock' | 'join' | 'message'} [kind]
 */
export function chime(kind = 'knock') {
  if (!soundsOn()) return;
  try {
    const Context = window.AudioContext;
    if (!Context) return;
    audio = audio || new Context();
    if (audio.state === 'suspended') audio.resume().catch(() => {});
    const start = audio.currentTime + 0.01;
    (SOUNDS[kind] || SOUNDS.knock).forEach((frequency, index) => {
      const at = start + index * 0.13;
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.type = 'sine';
      tone.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.06, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.16);
      tone.connect(gain).connect(audio.destination);
      tone.start(at);
      tone.stop(at + 0.18);
    });
  } catch {
    // No sound is no loss: what it is about shows on screen anyway.
  }
}

/**
 * An on/off switch (a button with role=switch). `set(on, disabled)` changes its state.
 * @returns {{row: HTMLElement, button: HTMLButtonElement & {set: (on: boolean, disabled?: boolean) => void}}}
 */
function switchRow({ testid, label, hint = '', onToggle }) {
  const labelId = uid('switch-label');
  const hintId = hint ? uid('switch-hint') : null;
  const button = /** @type {any} */ (h('button', {
    type: 'button', role: 'switch', class: 'switch', testid, 'aria-checked': 'false',
    'aria-labelledby': labelId, 'aria-describedby': hintId, onclick: () => onToggle(button.getAttribute('aria-checked') !== 'true'),
  }, h('span', { class: 'switch-knob', 'aria-hidden': 'true' })));
  button.set = (on, disabled = false) => {
    button.setAttribute('aria-checked', on ? 'true' : 'false');
    button.disabled = disabled;
  };
  const row = h('div', { class: 'switch-row' },
    h('div', { class: 'switch-text' },
      h('span', { class: 'switch-label', id: labelId }, label),
      hint ? h('span', { class: 'switch-hint', id: hintId }, hint) : null),
    button);
  return { row, button };
}

/** The Sounds switch, for the hosts' settings and the Devices dialog alike. */
export function soundsSwitch(testid = 'sounds-switch') {
  const sound = switchRow({ testid, label: t('settings.sound'), hint: t('settings.sound.hint'), onToggle: (on) => {
    setSounds(on);
    sound.button.set(on);
  } });
  sound.button.set(soundsOn());
  return sound;
}

/**
 * What everyone sees of the room's state (chips in the header: encrypted, locked, waiting
 * room), and for hosts a settings button and panel with the Lock and Waiting room switches.
 * Follows every room.updated frame, so all members see a change at once.
 */
export class RoomSettings {
  constructor({ roomId, room, onRoom }) {
    this.roomId = roomId;
    this.room = room;
    this.onRoom = onRoom;
    this.isHost = false;

    this.chips = {
      e2ee: h('span', { class: 'chip chip-e2ee', testid: 'room-e2ee', hidden: true },
        h('span', { class: 'icon icon-lock', 'aria-hidden': 'true' }), t('room.status.e2ee')),
      locked: h('span', { class: 'chip chip-locked', testid: 'room-locked', hidden: true },
        h('span', { class: 'icon icon-lock', 'aria-hidden': 'true' }), t('room.status.locked')),
      lobby: h('span', { class: 'chip', testid: 'room-lobby', hidden: true },
        h('span', { class: 'icon icon-users', 'aria-hidden': 'true' }), t('room.status.lobby')),
    };
    this.status = h('div', { class: 'room-status', testid: 'room-status', role: 'status' },
      this.chips.e2ee, this.chips.locked, this.chips.lobby);

    const panelId = uid('room-settings');
    this.locked = switchRow({ testid: 'setting-locked', label: t('settings.locked'), hint: t('settings.locked.hint'),
      onToggle: (on) => this.change('locked', on) });
    this.lobby = switchRow({ testid: 'setting-lobby', label: t('settings.lobby'), hint: t('settings.lobby.hint'),
      onToggle: (on) => this.change('lobby', on) });
    this.sound = soundsSwitch('setting-sound');
    this.panel = h('section', { class: 'panel panel-settings', id: panelId, testid: 'room-settings', hidden: true,
      'aria-label': t('settings.heading') },
    h('header', { class: 'panel-header' },
      h('h2', { class: 'panel-title' }, h('span', { class: 'icon icon-settings', 'aria-hidden': 'true' }),
        t('settings.heading')),
      h('button', { type: 'button', class: 'icon-btn', 'aria-label': t('settings.close'), title: t('settings.close'),
        onclick: () => this.open(false) }, h('span', { class: 'icon icon-close', 'aria-hidden': 'true' }))),
    h('div', { class: 'settings-body' }, this.locked.row, this.lobby.row, this.sound.row));
    this.button = h('button', { type: 'button', class: 'btn btn-small', testid: 'room-settings-button',
      'aria-expanded': 'false', 'aria-controls': panelId, onclick: () => this.open(this.panel.hidden) },
    h('span', { class: 'icon icon-settings', 'aria-hidden': 'true' }), h('span', {}, t('settings.button')));
    this.setRoom(room);
  }

  open(on) {
    // The same switch is in the Devices dialog: shown as it is now.
    this.sound.button.set(soundsOn());
    this.panel.hidden = !on || !this.isHost;
    this.button.setAttribute('aria-expanded', this.panel.hidden ? 'false' : 'true');
  }

  setHost(isHost) {
    this.isHost = isHost;
    this.button.hidden = !isHost;
    if (!isHost) this.open(false);
  }

  setRoom(room) {
    if (!room) return;
    this.room = room;
    this.chips.e2ee.hidden = !room.e2ee;
    this.chips.locked.hidden = !room.locked;
    this.chips.lobby.hidden = !room.lobby;
    this.locked.button.set(Boolean(room.locked));
    this.lobby.button.set(Boolean(room.lobby));
  }

  async change(field, on) {
    const control = field === 'locked' ? this.locked.button : this.lobby.button;
    control.set(on, true);
    try {
      const room = await api.updateRoom(this.roomId, { [field]: on });
      this.setRoom(room);
      this.onRoom(room);
    } catch (error) {
      toast(error instanceof ApiError ? error.describe() : t('error.network'), 'error');
      this.setRoom(this.room);
    } finally {
      control.disabled = false;
    }
  }
}

/**
 * The hosts' list of people knocking: one notice per request with Admit and Deny, a count, and
 * a chime for each new knock. Kept from GET …/lobby (on every socket `ready` and when this
 * member becomes a host) and from the lobby.requested / lobby.resolved frames.
 */
export class LobbyPanel {
  constructor({ roomId }) {
    this.roomId = roomId;
    this.requests = new Map();
    this.items = new Map();
    this.active = false;
    this.badge = h('span', { class: 'count-badge', testid: 'lobby-badge' });
    this.list = h('ul', { class: 'lobby-list', 'aria-live': 'polite' });
    this.element = h('section', { class: 'panel panel-lobby', testid: 'lobby-panel', hidden: true,
      'aria-label': t('lobby.heading') },
    h('header', { class: 'panel-header' },
      h('h2', { class: 'panel-title' }, h('span', { class: 'icon icon-users', 'aria-hidden': 'true' }),
        t('lobby.heading')),
      this.badge),
    this.list);
  }

  /** Hosts only: anyone else sees nothing and keeps nothing. */
  setActive(active) {
    this.active = active;
    if (!active) this.setAll([]);
    this.render();
  }

  async refresh() {
    if (!this.active) return;
    try {
      const list = await api.listLobby(this.roomId);
      if (this.active) this.setAll(list);
    } catch {
      // Frames keep it current; the next `ready` asks again.
    }
  }

  setAll(list) {
    this.requests = new Map(list.filter((r) => r?.id).map((r) => [r.id, r]));
    this.render();
  }

  add(request) {
    if (!this.active || !request?.id) return;
    const isNew = !this.requests.has(request.id);
    this.requests.set(request.id, request);
    this.render();
    if (isNew) chime();
  }

  remove(requestId) {
    if (this.requests.delete(requestId)) this.render();
  }

  render() {
    for (const [id, item] of this.items) {
      if (!this.requests.has(id)) {
        item.remove();
        this.items.delete(id);
      }
    }
    const sorted = [...this.requests.values()]
      .sort((a, b) => (Date.parse(a.requested_at) || 0) - (Date.parse(b.requested_at) || 0));
    for (const request of sorted) {
      let item = this.items.get(request.id);
      if (!item) {
        item = this.build(request);
        this.items.set(request.id, item);
      }
      this.list.appendChild(item);
    }
    const count = this.requests.size;
    this.badge.textContent = String(count);
    this.badge.setAttribute('aria-label', t('lobby.badge', { count }));
    this.badge.title = t('lobby.badge', { count });
    this.element.hidden = !this.active || count === 0;
  }

  build(request) {
    const name = request.display_name || '?';
    const admit = h('button', { type: 'button', class: 'btn btn-small btn-primary', testid: 'lobby-admit',
      'aria-label': t('lobby.admit.label', { name }) }, t('lobby.admit'));
    const deny = h('button', { type: 'button', class: 'btn btn-small', testid: 'lobby-deny',
      'aria-label': t('lobby.deny.label', { name }) }, t('lobby.deny'));
    const item = h('li', { class: 'lobby-request', testid: 'lobby-request', dataset: { requestId: request.id } },
      h('span', { class: 'lobby-request-text' }, t('lobby.request', { name })),
      h('span', { class: 'lobby-request-actions' }, admit, deny));
    admit.addEventListener('click', () => this.answer(request.id, true, [admit, deny]));
    deny.addEventListener('click', () => this.answer(request.id, false, [admit, deny]));
    return item;
  }

  async answer(requestId, admit, buttons) {
    for (const button of buttons) button.disabled = true;
    try {
      if (admit) await api.admit(this.roomId, requestId);
      else await api.deny(this.roomId, requestId);
      this.remove(requestId);
    } catch (error) {
      const gone = error instanceof ApiError && ['already_resolved', 'request_not_found'].includes(error.code);
      if (gone) this.remove(requestId);
      toast(error instanceof ApiError ? error.describe() : t('error.network'), 'error');
    } finally {
      for (const button of buttons) button.disabled = false;
    }
  }
}

/** The lock / waiting room note of pre-join, for a room as fetched. */
export function prejoinNotes(room) {
  return room?.locked ? h('p', { class: 'prejoin-full', role: 'status', testid: 'prejoin-locked' }, t('prejoin.locked'))
    : null;
}

