// The home page: create a meeting, or join one by link or id.

import { api, ApiError, rememberedName, rememberMembership, rememberName } from './api.js';
import { h, mount } from './dom.js';
import { e2eeAvailable, keyFragment, keyFromFragment, newRoomKey } from './e2ee.js';
import { t } from './i18n.js';

const UUID_IN_TEXT = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

/** The room id inside a pasted link (…/r/<id>) or a bare id; null when there is none. */
export function roomIdFrom(text) {
  const value = String(text || '').trim();
  const fromPath = value.match(/\/r\/([0-9a-f-]{36})/i);
  if (fromPath && UUID_IN_TEXT.test(fromPath[1])) return fromPath[1].toLowerCase();
  const bare = value.match(UUID_IN_TEXT);
  return bare ? bare[0].toLowerCase() : null;
}

function field(label, input, hint) {
  return h(
    'label',
    { class: 'field' },
    h('span', { class: 'field-label' }, label),
    input,
    hint ? h('span', { class: 'field-hint' }, hint) : null,
  );
}

/**
 * The key fragment of a pasted link (`#k=…`), kept as it was typed so that a wrong or cut key
 * still reaches the room page, which explains it; '' when the text has none.
 */
export function keyFragmentFrom(text) {
  const hash = String(text || '').trim().match(/#(.*)$/);
  if (!hash || !keyFromFragment(hash[0]).present) return '';
  const key = new URLSearchParams(hash[1]).get('k') || '';
  return `#k=${encodeURIComponent(key).replace(/%3D/g, '=')}`;
}

/** Shows server-side validation errors next to the matching inputs. */
function showFieldErrors(form, error, fallback) {
  let shown = false;
  for (const item of error.errors || []) {
    const input = form.querySelector(`[name="${CSS.escape(String(item.field || ''))}"]`);
    if (input) {
      input.setCustomValidity(String(item.message || t('error.validation_error')));
      input.reportValidity();
      input.addEventListener('input', () => input.setCustomValidity(''), { once: true });
      shown = true;
    }
  }
  if (!shown) fallback.textContent = error.describe();
}

function createForm(navigate) {
  const title = h('input', {
    name: 'title', type: 'text', required: true, maxlength: 255, autocomplete: 'off',
    placeholder: t('home.create.title.placeholder'), testid: 'create-title',
  });
  const description = h('textarea', {
    name: 'description', rows: 2, maxlength: 2000,
    placeholder: t('home.create.description.placeholder'), testid: 'create-description',
  });
  const max = h('input', {
    name: 'max_participants', type: 'number', min: 2, max: 100, step: 1, value: '10', required: true,
    inputmode: 'numeric', testid: 'create-max',
  });
  const name = h('input', {
    name: 'display_name', type: 'text', required: true, maxlength: 64, autocomplete: 'nickname',
    placeholder: t('name.placeholder'), value: rememberedName(), testid: 'create-name',
  });
  const canEncrypt = e2eeAvailable();
  const e2ee = h('input', {
    name: 'e2ee', type: 'checkbox', role: 'switch', class: 'switch-input', testid: 'create-e2ee',
    disabled: !canEncrypt, 'aria-describedby': 'create-e2ee-note',
  });
  const e2eeField = h('div', { class: 'field field-switch' },
    h('label', { class: 'switch-line' }, e2ee,
      h('span', { class: 'switch-line-text' }, h('span', { class: 'icon icon-lock', 'aria-hidden': 'true' }),
        t('home.create.e2ee'))),
    h('span', { class: 'field-hint', id: 'create-e2ee-note', testid: 'create-e2ee-note' },
      canEncrypt ? t('home.create.e2ee.hint') : t('home.create.e2ee.unavailable')));
  const error = h('p', { class: 'form-error', role: 'alert', testid: 'create-error' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-wide', testid: 'create-submit' },
    t('home.create.submit'));

  const form = h(
    'form',
    { class: 'card form' },
    h('h2', { class: 'card-title' }, t('home.create.heading')),
    field(t('home.create.title'), title),
    field(t('home.create.description'), description),
    h('div', { class: 'field-row' },
      field(t('home.create.name'), name),
      field(t('home.create.max'), max, t('home.create.max.hint'))),
    e2eeField,
    error,
    submit,
  );

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.textContent = '';
    for (const input of [title, name]) input.value = input.value.trim();
    if (!form.reportValidity()) return;
    submit.disabled = true;
    submit.textContent = t('home.create.busy');
    const encrypted = e2ee.checked && canEncrypt;
    // Made here, before anything is sent; it goes into the link's fragment and nowhere else.
    const key = encrypted ? newRoomKey() : '';
    try {
      const { room, participant } = await api.createRoom({
        title: title.value,
        description: description.value.trim() || null,
        maxParticipants: Number(max.value) || 10,
        displayName: name.value,
        e2ee: encrypted,
      });
      rememberName(name.value);
      rememberMembership(room.id, participant?.id);
      navigate(`/r/${room.id}${encrypted ? keyFragment(key) : ''}`);
    } catch (err) {
      if (err instanceof ApiError) showFieldErrors(form, err, error);
      else error.textContent = t('error.network');
      submit.disabled = false;
      submit.textContent = t('home.create.submit');
    }
  });
  return form;
}

function joinForm(navigate) {
  const input = h('input', {
    name: 'room', type: 'text', required: true, autocomplete: 'off', spellcheck: 'false',
    placeholder: t('home.join.placeholder'), testid: 'join-input',
  });
  const error = h('p', { class: 'form-error', role: 'alert', testid: 'join-error' });
  const form = h(
    'form',
    { class: 'card form' },
    h('h2', { class: 'card-title' }, t('home.join.heading')),
    field(t('home.join.label'), input),
    error,
    h('button', { type: 'submit', class: 'btn btn-wide', testid: 'join-submit' }, t('home.join.submit')),
  );
  input.addEventListener('input', () => { error.textContent = ''; });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const roomId = roomIdFrom(input.value);
    if (!roomId) {
      error.textContent = t('home.join.invalid');
      input.focus();
      return;
    }
    navigate(`/r/${roomId}${keyFragmentFrom(input.value)}`);
  });
  return form;
}

export function renderHome(root, navigate) {
  document.title = t('app.name');
  mount(
    root,
    h(
      'div',
      { class: 'home' },
      h('section', { class: 'hero' },
        h('h1', { class: 'hero-title' }, t('app.name')),
        h('p', { class: 'hero-tagline' }, t('app.tagline'))),
      h('div', { class: 'home-forms' }, createForm(navigate), joinForm(navigate)),
      h('p', { class: 'home-privacy' }, t('home.privacy')),
    ),
  );
  root.querySelector('[data-testid="create-title"]')?.focus();
  return () => {};
}
