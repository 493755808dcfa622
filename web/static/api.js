// The HTTP side of the public API (docs/api.md) and the anonymous identity that goes with it.

import { t } from './i18n.js';

const PARTICIPANT_KEY = 'veche.participant_id';
const NAME_KEY = 'veche.display_name';
const REQUEST_TIMEOUT_MS = 15000;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// localStorage can throw (storage disabled, some private modes); the page keeps working with
// an identity that lives as long as the tab.
const memoryStore = new Map();
const store = {
  get(key) {
    try {
      return window.localStorage.getItem(key);
    } catch {
      return memoryStore.get(key) ?? null;
    }
  },
  set(key, value) {
    try {
      window.localStorage.setItem(key, value);
    } catch {
      memoryStore.set(key, value);
    }
  },
};

export function isUuid(value) {
  return typeof value === 'string' && UUID_RE.test(value);
}

/** A random UUID v4. crypto.randomUUID exists only in secure contexts, hence the fallback. */
export function newUuid() {
  if (window.crypto?.randomUUID) return window.crypto.randomUUID();
  const bytes = window.crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The secret participant id of this browser: created on the first visit, kept in localStorage.
 * It is only ever sent in the X-Participant-ID header or in the chat socket's auth frame.
 */
export function participantId() {
  let id = store.get(PARTICIPANT_KEY);
  if (!isUuid(id)) {
    id = null;
    try {
      id = newUuid();
      store.set(PARTICIPANT_KEY, id);
    } catch {
      // No usable crypto: the server assigns an id on the first create/join (see request()).
    }
  }
  return id;
}

export function rememberedName() {
  return store.get(NAME_KEY) || '';
}

export function rememberName(name) {
  if (name) store.set(NAME_KEY, name);
}

const MEMBERSHIPS_KEY = 'veche.memberships';
const MEMBERSHIPS_KEPT = 30;

function memberships() {
  try {
    const parsed = JSON.parse(store.get(MEMBERSHIPS_KEY) || '{}');
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : {};
  } catch {
    return {};
  }
}

/**
 * The public id of this browser's membership in a room, as last joined or created (public ids
 * are no secret: everyone in the room sees them). Lets pre-join tell "the room is full" from
 * "the room is full, and one of the places is mine" without joining.
 */
export function rememberedMembership(roomId) {
  const id = memberships()[String(roomId).toLowerCase()];
  return isUuid(id) ? id : null;
}

export function rememberMembership(roomId, publicId) {
  if (!isUuid(publicId)) return;
  const key = String(roomId).toLowerCase();
  const kept = Object.entries(memberships()).filter(([room]) => room !== key).slice(-(MEMBERSHIPS_KEPT - 1));
  store.set(MEMBERSHIPS_KEY, JSON.stringify(Object.fromEntries([...kept, [key, publicId]])));
}

/** A short list of room ids kept in localStorage (the newest MEMBERSHIPS_KEPT of them). */
function roomList(storageKey) {
  const read = () => {
    try {
      const parsed = JSON.parse(store.get(storageKey) || '[]');
      return Array.isArray(parsed) ? parsed.filter((id) => typeof id === 'string') : [];
    } catch {
      return [];
    }
  };
  return {
    has: (roomId) => read().includes(String(roomId).toLowerCase()),
    add: (roomId) => {
      const key = String(roomId).toLowerCase();
      const kept = read().filter((room) => room !== key).slice(-(MEMBERSHIPS_KEPT - 1));
      store.set(storageKey, JSON.stringify([...kept, key]));
    },
  };
}

const entered = roomList('veche.entered');

/**
 * Whether this browser ever got into the meeting of a room (its page showed the meeting), as
 * opposed to a creator or guest who only reached pre-join: an ended room is worded for each.
 */
export function hasEntered(roomId) {
  return entered.has(roomId);
}

export function rememberEntered(roomId) {
  entered.add(roomId);
}

const banned = roomList('veche.banned');

/**
 * Whether this browser saw its identity removed from a room by a host. A ban is for good
 * (docs/api.md, section 6), so pre-join says so before anyone types a name. The API has no way
 * to ask about a ban without joining: a removal this page did not witness shows on Join.
 */
export function wasRemoved(roomId) {
  return banned.has(roomId);
}

export function rememberRemoved(roomId) {
  banned.add(roomId);
}

/** An API failure with the fields of the RFC 9457 problem body. status 0 = no answer at all. */
export class ApiError extends Error {
  /**
   * @param {{ status: number, code?: string, title?: string, detail?: string,
   *           errors?: Array<{field: string, message: string}>, retryAfter?: number }} problem
   */
  constructor({ status, code, title, detail, errors, retryAfter }) {
    super(detail || title || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || (status === 0 ? 'network' : `http_${status}`);
    this.title = title || '';
    this.detail = detail || '';
    this.errors = Array.isArray(errors) ? errors : [];
    this.retryAfter = retryAfter;
  }

  /** A short, translated explanation for a toast or an inline error. */
  describe() {
    if (this.status === 0) return t('error.network');
    if (this.code === 'rate_limited') return t('error.rate_limited', { seconds: this.retryAfter ?? 1 });
    if (this.code === 'unavailable' || this.status === 503) return t('error.unavailable');
    const key = `error.${this.code}`;
    const text = t(key);
    return text === key ? t('error.generic', { status: this.status }) : text;
  }
}

/** Seconds to wait from a Retry-After header (delta-seconds or an HTTP date). */
function parseRetryAfter(value) {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

/** `keepalive`: the request outlives the page (sent while the tab closes). */
async function request(method, path, body, { keepalive = false } = {}) {
  const headers = { Accept: 'application/json, application/problem+json' };
  const id = participantId();
  if (id) headers['X-Participant-ID'] = id;
  if (body !== undefined) headers['Content-Type'] = 'application/json';

  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: controller.signal,
      credentials: 'same-origin',
      cache: 'no-store',
      keepalive,
    });
  } catch {
    throw new ApiError({ status: 0 });
  } finally {
    clearTimeout(timer);
  }

  const assigned = response.headers.get('X-Participant-ID');
  if (!id && isUuid(assigned)) store.set(PARTICIPANT_KEY, assigned);

  let payload = null;
  if (response.status !== 204) {
    const text = await response.text().catch(() => '');
    if (text) {
      try {
        payload = JSON.parse(text);
      } catch {
        payload = null;
      }
    }
  }
  if (!response.ok) {
    const problem = payload && typeof payload === 'object' ? payload : {};
    throw new ApiError({
      status: response.status,
      code: problem.code,
      title: problem.title,
      detail: problem.detail,
      errors: problem.errors,
      retryAfter: parseRetryAfter(response.headers.get('Retry-After')),
    });
  }
  return { status: response.status, data: payload };
}

const rooms = '/api/v1/rooms';
const seg = encodeURIComponent;

export const api = {
  /**
   * @param {{title: string, description?: string|null, maxParticipants: number, displayName: string,
   *          e2ee?: boolean}} fields
   */
  async createRoom({ title, description, maxParticipants, displayName, e2ee = false }) {
    const body = { title, max_participants: maxParticipants, display_name: displayName };
    if (description) body.description = description;
    if (e2ee) body.e2ee = true;
    return (await request('POST', rooms, body)).data;
  },
  async getRoom(roomId) {
    return (await request('GET', `${rooms}/${seg(roomId)}`)).data;
  },
  /**
   * Resolves to {self, created} (created is false when the membership was already active), or
   * to {self: null, waiting: request_id} when the room's lobby answers 202: a host has to let
   * the caller in, and the same join is repeated until it does (docs/api.md, section 16).
   * @returns {Promise<{self: any, created: boolean, waiting: string|null}>}
   */
  async joinRoom(roomId, displayName) {
    const { status, data } = await request('POST', `${rooms}/${seg(roomId)}/join`, {
      display_name: displayName,
    });
    if (status === 202) return { self: null, created: false, waiting: String(data?.request_id || '') };
    return { self: data, created: status === 201, waiting: null };
  },
  async leaveRoom(roomId) {
    await request('POST', `${rooms}/${seg(roomId)}/leave`);
  },
  async listParticipants(roomId) {
    return (await request('GET', `${rooms}/${seg(roomId)}/participants`)).data?.participants ?? [];
  },
  async endRoom(roomId) {
    return (await request('POST', `${rooms}/${seg(roomId)}/end`)).data;
  },
  async kick(roomId, publicId) {
    await request('POST', `${rooms}/${seg(roomId)}/participants/${seg(publicId)}/kick`);
  },
  async mute(roomId, publicId, kind) {
    await request('POST', `${rooms}/${seg(roomId)}/media/participants/${seg(publicId)}/mute`, {
      kind,
    });
  },
  /** PATCH the room (hosts): any of title, description, max_participants, locked, lobby. */
  async updateRoom(roomId, fields) {
    return (await request('PATCH', `${rooms}/${seg(roomId)}`, fields)).data;
  },
  async listLobby(roomId) {
    return (await request('GET', `${rooms}/${seg(roomId)}/lobby`)).data?.requests ?? [];
  },
  async admit(roomId, requestId) {
    await request('POST', `${rooms}/${seg(roomId)}/lobby/${seg(requestId)}/admit`);
  },
  async deny(roomId, requestId) {
    await request('POST', `${rooms}/${seg(roomId)}/lobby/${seg(requestId)}/deny`);
  },
  async promote(roomId, publicId) {
    return (await request('POST', `${rooms}/${seg(roomId)}/participants/${seg(publicId)}/promote`)).data;
  },
  async demote(roomId, publicId) {
    return (await request('POST', `${rooms}/${seg(roomId)}/participants/${seg(publicId)}/demote`)).data;
  },
  async raiseHand(roomId, raised) {
    return (await request('POST', `${rooms}/${seg(roomId)}/hand`, { raised: Boolean(raised) })).data;
  },
  async mediaToken(roomId) {
    return (await request('POST', `${rooms}/${seg(roomId)}/media/token`)).data;
  },
  /** @param {string} roomId @param {{limit?: number, after?: string, before?: string}} [page] */
  async listMessages(roomId, { limit, after, before } = {}) {
    const query = new URLSearchParams();
    if (limit) query.set('limit', String(limit));
    if (after) query.set('after', after);
    if (before) query.set('before', before);
    const suffix = query.toString() ? `?${query}` : '';
    return (await request('GET', `${rooms}/${seg(roomId)}/chat/messages${suffix}`)).data?.messages ?? [];
  },
  async postMessage(roomId, content) {
    return (await request('POST', `${rooms}/${seg(roomId)}/chat/messages`, { content })).data;
  },
  async editMessage(roomId, messageId, content) {
    return (await request('PUT', `${rooms}/${seg(roomId)}/chat/messages/${seg(messageId)}`, { content }))
      .data;
  },
  /** @param {string} roomId @param {string} messageId @param {{keepalive?: boolean}} [options] */
  async deleteMessage(roomId, messageId, options = {}) {
    await request('DELETE', `${rooms}/${seg(roomId)}/chat/messages/${seg(messageId)}`, undefined, options);
  },
};
