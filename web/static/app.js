// Entry point of the veche client: identity on first visit, and the two routes / and /r/{id}.

import { participantId } from './api.js';
import { h, mount } from './dom.js';
import { lang, languages, setLanguage, t } from './i18n.js';
import { renderHome } from './home.js';
import { showError, showNotFound } from './screens.js';

const root = document.getElementById('app');
let cleanup = null;
/**
 * Whether the current page may be left: `true`, or a promise of the person's answer (a meeting
 * asks first). Set by the page that is shown, cleared on every route.
 * @type {(() => true | Promise<boolean>) | null}
 */
let guard = null;
/** The address of the page shown, to put back while a Back is being confirmed. */
let current = location.pathname + location.search + location.hash;
/** A Back that was confirmed: the popstate it causes goes through. */
let passing = false;
/** Counts routes: a room page whose code arrives after the person went elsewhere is not drawn. */
let routes = 0;

function setGuard(fn) {
  guard = fn;
}

/** Goes to `path` (which may carry a fragment: an e2ee room's key) inside the app. */
async function navigate(path) {
  const answer = guard ? guard() : true;
  if (answer !== true && !(await answer)) return;
  if (path !== location.pathname + location.hash) history.pushState(null, '', path);
  route();
}

function route() {
  cleanup?.();
  cleanup = null;
  guard = null;
  const seq = ++routes;
  current = location.pathname + location.search + location.hash;
  window.scrollTo(0, 0);
  const path = location.pathname;
  const room = path.match(/^\/r\/([^/]+)\/?$/);
  document.body.dataset.page = room ? 'room' : 'home';
  if (path === '/' || path === '/index.html') {
    cleanup = renderHome(root, navigate);
  } else if (room) {
    let roomId = room[1];
    try {
      roomId = decodeURIComponent(roomId);
    } catch {
      // A malformed escape is simply not a room id; the room page says "not found".
    }
    // The room's code (meeting, chat, devices, encryption) is a chunk of its own, so the home
    // page never downloads it; a failed download (offline, or a deploy replaced the chunk)
    // offers a reload.
    mount(root, h('div', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' })));
    import('./room.js').then(
      ({ renderRoom }) => {
        if (seq === routes) cleanup = renderRoom(root, navigate, roomId, setGuard);
      },
      () => {
        if (seq === routes) showError(root, navigate, { onRetry: () => location.reload() });
      },
    );
  } else {
    showNotFound(root, navigate);
  }
}

/**
 * Back or Forward. The browser has already changed the address; when the page asks first (a
 * meeting), the address goes back to it while the question is open, and only a yes goes on.
 */
async function onPopState() {
  if (passing) {
    passing = false;
    route();
    return;
  }
  const answer = guard ? guard() : true;
  if (answer === true) {
    route();
    return;
  }
  history.pushState(null, '', current);
  if (await answer) {
    passing = true;
    history.back();
  }
}

/**
 * The language switch. Every page but a meeting is drawn again in the new language at once; a
 * meeting's page is reloaded, which keeps the membership (the page shows pre-join again).
 */
function languageSwitch() {
  const select = h('select', { class: 'lang-select', testid: 'lang-select', 'aria-label': t('app.language') },
    languages.map(([code, name]) => h('option', { value: code, lang: code, selected: code === lang }, name)));
  select.addEventListener('change', () => {
    const inMeeting = Boolean(cleanup?.inMeeting?.());
    setLanguage(select.value);
    if (inMeeting) {
      location.reload();
      return;
    }
    renderChrome();
    route();
    /** @type {HTMLElement | null} */ (document.querySelector('[data-testid="lang-select"]'))?.focus();
  });
  return select;
}

function renderChrome() {
  document.documentElement.lang = lang;
  const brand = h('a', { class: 'brand', href: '/', testid: 'home-link' },
    h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), t('app.name'));
  brand.addEventListener('click', (event) => {
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    navigate('/');
  });
  mount(document.getElementById('topbar'), brand, languageSwitch());
}

participantId();
renderChrome();
window.addEventListener('popstate', onPopState);
route();
