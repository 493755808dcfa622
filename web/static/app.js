// Entry point of the veche client: identity on first visit, and the two routes / and /r/{id}.

import { participantId } from './api.js';
import { h, mount } from './dom.js';
import { lang, t } from './i18n.js';
import { renderHome } from './home.js';
import { renderRoom } from './room.js';
import { showNotFound } from './screens.js';

const root = document.getElementById('app');
let cleanup = null;

/** Goes to `path` (which may carry a fragment: an e2ee room's key) inside the app. */
function navigate(path) {
  if (path !== location.pathname + location.hash) history.pushState(null, '', path);
  route();
}

function route() {
  cleanup?.();
  cleanup = null;
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
    cleanup = renderRoom(root, navigate, roomId);
  } else {
    showNotFound(root, navigate);
  }
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
  mount(document.getElementById('topbar'), brand);
}

participantId();
renderChrome();
window.addEventListener('popstate', route);
route();
