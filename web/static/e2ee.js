// End-to-end encrypted rooms (docs/api.md, section 17): the room key, which lives only in the
// fragment of the room link (#k=<base64url>), and the chat cipher derived from it.
//
// The fragment is never sent by the browser (not in requests, not in Referer), and this module
// never hands the key to anything but WebCrypto and livekit-client's key provider: it is not
// stored, logged or put into any API call.

const KEY_BYTES = 32;
const IV_BYTES = 12;
const PREFIX = 'e2ee:v1:';
/** The server's limit on an encrypted message's content (docs/api.md, section 17). */
export const MAX_ENCRYPTED_CONTENT = 8000;
const CHAT_SALT = new TextEncoder().encode('veche/e2ee/chat/salt/v1');
const CHAT_INFO = new TextEncoder().encode('veche/e2ee/chat/v1');

/** Whether this page can encrypt at all (WebCrypto is offered only in secure contexts). */
export function e2eeAvailable() {
  return Boolean(window.isSecureContext && window.crypto?.subtle && window.crypto.getRandomValues);
}

export function toBase64Url(bytes) {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * Bytes of a base64url string (padding optional); null when it is not one.
 * @returns {Uint8Array<ArrayBuffer>|null}
 */
export function fromBase64Url(text) {
  const value = String(text || '');
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(value)) return null;
  const plain = value.replace(/=+$/, '').replace(/-/g, '+').replace(/_/g, '/');
  if (plain.length % 4 === 1) return null;
  try {
    const binary = atob(plain + '='.repeat((4 - (plain.length % 4)) % 4));
    return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
  } catch {
    return null;
  }
}

/** A fresh random 256-bit room key, as it goes into the link: base64url, 43 characters. */
export function newRoomKey() {
  return toBase64Url(window.crypto.getRandomValues(new Uint8Array(KEY_BYTES)));
}

/** The fragment that carries a key: `#k=<key>`. */
export function keyFragment(key) {
  return `#k=${key}`;
}

/**
 * What the fragment of this page's URL says about a key: {present: false} without a `k`,
 * {present: true, bytes: null} for a `k` that is not a 256-bit base64url key (a truncated
 * link), {present: true, bytes, text} for a usable one.
 * @returns {{present: boolean, bytes: Uint8Array|null, text: string}}
 */
export function keyFromFragment(hash) {
  const params = new URLSearchParams(String(hash || '').replace(/^#/, ''));
  const text = params.get('k');
  if (text === null) return { present: false, bytes: null, text: '' };
  const bytes = fromBase64Url(text.trim());
  if (!bytes || bytes.length !== KEY_BYTES) return { present: true, bytes: null, text: '' };
  return { present: true, bytes, text: toBase64Url(bytes) };
}

/** Whether a message content is in the encrypted format. */
export function isEncrypted(content) {
  return typeof content === 'string' && content.startsWith(PREFIX);
}

/**
 * AES-256-GCM for chat messages, with a key derived by HKDF-SHA-256 from the room key (so the
 * chat key is not the media key: livekit-client derives its own from the same room key with
 * its own salt). Every message has a fresh random 96-bit IV; the room id is the additional
 * data, so a message cannot be passed off in another room. Content:
 * "e2ee:v1:" + base64url(iv || ciphertext).
 */
export class ChatCipher {
  /** @param {CryptoKey} key @param {string} roomId */
  constructor(key, roomId) {
    this.key = key;
    this.aad = new TextEncoder().encode(`veche/e2ee/chat/v1/${String(roomId).toLowerCase()}`);
  }

  /** @param {Uint8Array} roomKey @param {string} roomId */
  static async fromRoomKey(roomKey, roomId) {
    const material = await window.crypto.subtle.importKey('raw', new Uint8Array(roomKey), 'HKDF', false, ['deriveKey']);
    const key = await window.crypto.subtle.deriveKey(
      { name: 'HKDF', hash: 'SHA-256', salt: CHAT_SALT, info: CHAT_INFO },
      material,
      { name: 'AES-GCM', length: 256 },
      false,
      ['encrypt', 'decrypt'],
    );
    return new ChatCipher(key, roomId);
  }

  /** @param {string} text @returns {Promise<string>} */
  async encrypt(text) {
    const iv = window.crypto.getRandomValues(new Uint8Array(IV_BYTES));
    const sealed = new Uint8Array(await window.crypto.subtle.encrypt(
      { name: 'AES-GCM', iv, additionalData: this.aad },
      this.key,
      new TextEncoder().encode(text),
    ));
    const out = new Uint8Array(iv.length + sealed.length);
    out.set(iv);
    out.set(sealed, iv.length);
    return PREFIX + toBase64Url(out);
  }

  /** The text of an encrypted content, or null when it cannot be decrypted with this key. */
  async decrypt(content) {
    if (!isEncrypted(content)) return null;
    const bytes = fromBase64Url(content.slice(PREFIX.length).trim());
    if (!bytes || bytes.length < IV_BYTES + 16) return null;
    try {
      const plain = await window.crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: bytes.subarray(0, IV_BYTES), additionalData: this.aad },
        this.key,
        bytes.subarray(IV_BYTES),
      );
      return new TextDecoder('utf-8', { fatal: true }).decode(plain);
    } catch {
      return null;
    }
  }
}
