// The live participant list, keyed by public participant id, with the host's moderation buttons.
// Raised hands come first (the earliest raised first), then everyone by the time they joined.

import { h, hueClass, initials } from './dom.js';
import { t } from './i18n.js';

function byJoinTime(a, b) {
  const at = Date.parse(a.joined_at) || 0;
  const bt = Date.parse(b.joined_at) || 0;
  return at - bt || String(a.id).localeCompare(String(b.id));
}

function handTime(person) {
  return person.hand_raised_at ? Date.parse(person.hand_raised_at) || 0 : null;
}

export function byHandThenJoinTime(a, b) {
  const ah = handTime(a);
  const bh = handTime(b);
  if (ah !== null && bh !== null && ah !== bh) return ah - bh;
  if (ah !== null && bh === null) return -1;
  if (ah === null && bh !== null) return 1;
  return byJoinTime(a, b);
}

export class ParticipantList {
  /**
   * @param {object} options
   * @param {{id: string, role: string}} options.self  the caller's membership (join response)
   * @param {number} options.maxParticipants
   * @param {(participant, kind: 'kick'|'audio'|'video'|'promote'|'demote') => Promise<void>} options.onModerate
   * @param {(() => void) | null} [options.onChange]  called after every change of the list
   */
  constructor({ self, maxParticipants, onModerate, onChange = null }) {
    this.self = self;
    this.maxParticipants = maxParticipants;
    this.onModerate = onModerate;
    this.onChange = onChange;
    this.people = new Map();
    this.items = new Map();
    this.speaking = new Set();

    this.count = h('span', { class: 'panel-count', testid: 'participant-count' });
    this.list = h('ul', { class: 'people', testid: 'participant-list' });
    this.element = h(
      'section',
      { class: 'panel panel-people', 'aria-label': t('room.participants') },
      h('header', { class: 'panel-header' },
        h('h2', { class: 'panel-title' }, h('span', { class: 'icon icon-users', 'aria-hidden': 'true' }),
          t('room.participants')),
        this.count),
      this.list,
    );
    this.render();
  }

  get isHost() {
    return this.self?.role === 'host';
  }

  setSelf(self) {
    this.self = self;
    for (const item of this.items.values()) item.remove();
    this.items.clear();
    this.render();
  }

  /** Replaces the whole list (initial load, and after every socket reconnect). */
  setAll(participants) {
    this.people = new Map(participants.filter((p) => p?.id).map((p) => [p.id, p]));
    this.render();
  }

  upsert(participant) {
    if (!participant?.id) return;
    this.people.set(participant.id, { ...this.people.get(participant.id), ...participant });
    this.render();
  }

  remove(publicId) {
    if (this.people.delete(publicId)) this.render();
  }

  /** The public ids of the people whose hand is up. */
  raisedHands() {
    return new Set([...this.people.values()].filter((p) => p.hand_raised_at).map((p) => p.id));
  }

  /** How many active hosts the list knows of. */
  hostCount() {
    return [...this.people.values()].filter((p) => p.role === 'host').length;
  }

  get(publicId) {
    return this.people.get(publicId) || null;
  }

  setSpeaking(identities) {
    this.speaking = identities;
    for (const [id, item] of this.items) {
      item.classList.toggle('person-speaking', identities.has(id));
    }
  }

  render() {
    const sorted = [...this.people.values()].sort(byHandThenJoinTime);
    for (const [id, item] of this.items) {
      if (!this.people.has(id)) {
        item.remove();
        this.items.delete(id);
      }
    }
    sorted.forEach((person, index) => {
      const item = this.item(person);
      if (this.list.children[index] !== item) this.list.insertBefore(item, this.list.children[index] || null);
    });
    this.count.textContent = this.maxParticipants
      ? `${sorted.length} / ${this.maxParticipants}`
      : String(sorted.length);
    this.onChange?.();
  }

  item(person) {
    let item = this.items.get(person.id);
    if (!item) {
      item = this.build(person);
      this.items.set(person.id, item);
    }
    const name = person.display_name || '?';
    item.querySelector('.person-name').textContent = name;
    const avatar = item.querySelector('.avatar');
    avatar.textContent = initials(name);
    const isHost = person.role === 'host';
    item.querySelector('.badge-host').hidden = !isHost;
    item.dataset.role = isHost ? 'host' : 'participant';
    const hand = item.querySelector('.person-hand');
    hand.hidden = !person.hand_raised_at;
    hand.title = t('room.handOf', { name });
    hand.setAttribute('aria-label', t('room.handOf', { name }));
    item.dataset.hand = person.hand_raised_at ? 'raised' : 'down';
    item.classList.toggle('person-hand-raised', Boolean(person.hand_raised_at));
    const promote = item.querySelector('[data-testid="promote-button"]');
    const demote = item.querySelector('[data-testid="demote-button"]');
    if (promote) promote.hidden = isHost;
    if (demote) demote.hidden = !isHost;
    item.classList.toggle('person-speaking', this.speaking.has(person.id));
    for (const button of item.querySelectorAll('[data-title-key]')) {
      button.title = t(button.dataset.titleKey, { name });
      button.setAttribute('aria-label', t(button.dataset.labelKey, { name }));
    }
    return item;
  }

  build(person) {
    const isSelf = person.id === this.self?.id;
    let actions = null;
    if (this.isHost && !isSelf) {
      actions = h('div', { class: 'person-actions' },
        this.action(person, 'promote', 'promote-button', 'host', 'room.promote'),
        this.action(person, 'demote', 'demote-button', 'host-off', 'room.demote'),
        this.action(person, 'audio', 'mute-audio-button', 'mic-off', 'room.muteAudio'),
        this.action(person, 'video', 'mute-video-button', 'cam-off', 'room.muteVideo'),
        this.action(person, 'kick', 'kick-button', 'kick', 'room.kick'));
    } else if (this.isHost && isSelf) {
      // A host may hand back its rights, unless it is the only one (409 last_host).
      actions = h('div', { class: 'person-actions' },
        this.action(person, 'demote', 'step-down-button', 'host-off', 'room.stepDown'));
    }
    return h(
      'li',
      { class: `person ${isSelf ? 'person-self' : ''}`, testid: 'participant-item',
        dataset: { participantId: person.id } },
      h('span', { class: `avatar ${hueClass(person.id)}`, 'aria-hidden': 'true' }),
      h('span', { class: 'person-main' },
        h('span', { class: 'person-name' }),
        h('span', { class: 'person-badges' },
          h('span', { class: 'icon icon-hand person-hand', role: 'img', hidden: true, testid: 'participant-hand' }),
          isSelf ? h('span', { class: 'badge badge-self' }, t('room.you')) : null,
          h('span', { class: 'badge badge-host', hidden: true }, t('room.host')),
          h('span', { class: 'speaking-bars', title: t('room.speaking'), 'aria-hidden': 'true' },
            h('i'), h('i'), h('i')))),
      actions,
    );
  }

  action(person, kind, testid, iconName, labelKey) {
    const button = h(
      'button',
      {
        type: 'button', class: `icon-btn ${kind === 'kick' ? 'icon-btn-danger' : ''}`, testid,
        dataset: { titleKey: `${labelKey}.title`, labelKey: `${labelKey}.label` },
      },
      h('span', { class: `icon icon-${iconName}`, 'aria-hidden': 'true' }),
    );
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        await this.onModerate(this.people.get(person.id) || person, kind);
      } finally {
        button.disabled = false;
      }
    });
    return button;
  }
}
