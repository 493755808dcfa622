// The meeting stage's layout and the chrome of its tiles, and the meeting's one reconnecting
// banner. media.js owns the LiveKit side (which tiles exist, their tracks); this module decides
// where they go: a grid, or one large tile with the others in a strip, because a shared screen
// is unreadable at a grid cell's size and people expect to choose whom they look at.
//
//   grid       every tile the same size (nobody shares, nothing pinned)
//   presenter  someone shares a screen: the share is large, the cameras are in the strip
//   pinned     someone picked a tile: that one is large, whatever else is going on

import { h, mount } from './dom.js';
import { t } from './i18n.js';

const QUALITIES = new Set(['excellent', 'good', 'poor', 'lost']);

function icon(name) {
  return h('span', { class: `icon icon-${name}`, 'aria-hidden': 'true' });
}

/**
 * Puts `children` into `parent` in this order, moving only what is out of place: a <video>
 * that is moved keeps playing, but every move is layout work, and a tile in full screen that
 * is taken out of the document leaves full screen.
 */
function place(parent, children) {
  children.forEach((child, index) => {
    if (parent.children[index] !== child) parent.insertBefore(child, parent.children[index] || null);
  });
  while (parent.children.length > children.length) parent.lastElementChild?.remove();
}

export class StageLayout {
  /**
   * @param {HTMLElement} grid  the stage's tile container (data-testid video-grid)
   */
  constructor(grid) {
    this.grid = grid;
    this.main = h('div', { class: 'stage-main', testid: 'stage-main' });
    this.strip = h('div', { class: 'stage-strip', testid: 'stage-strip' });
    /** The key of the tile picked by this person, or null. */
    this.pinnedKey = null;
    /** @type {Map<string, any>} the stage's tiles, with the buttons dress() gave them */
    this.tiles = new Map();
    this.localIdentity = '';
    this.unpinButton = h('button', {
      type: 'button', class: 'btn btn-small stage-unpin', testid: 'stage-unpin', onclick: () => this.pin(null),
    }, icon('unpin'), t('stage.unpin'));
    this.grid.dataset.layout = 'grid';
    this.onFullscreen = () => this.markFullscreen();
    document.addEventListener('fullscreenchange', this.onFullscreen);
  }

  /**
   * Gives a tile its pin and full-screen buttons and its quality indicator (once), and names
   * them after `who`, the person the tile shows.
   */
  dress(tile, key, who) {
    if (!tile.pinButton) {
      // The pin button covers the whole tile: a click anywhere on the picture pins, and for a
      // keyboard it is one stop per tile (Enter or Space), not a tile with buttons inside it.
      tile.pinButton = h('button', {
        type: 'button', class: 'tile-pin', testid: 'tile-pin', 'aria-pressed': 'false', onclick: () => this.toggle(key),
      }, h('span', { class: 'tile-pin-glyph' }, icon('pin')));
      tile.fullscreenButton = h('button', {
        type: 'button', class: 'tile-fullscreen', testid: 'tile-fullscreen', 'aria-pressed': 'false',
        onclick: () => this.fullscreen(tile),
      }, icon('fullscreen'));
      // Browsers without element full screen (iPhone Safari) get no button that cannot work.
      tile.fullscreenButton.hidden = !document.fullscreenEnabled;
      tile.quality = h('span', { class: 'tile-quality', testid: 'tile-quality', hidden: true, dataset: { quality: 'unknown' } },
        h('span', { class: 'tile-quality-bars', 'aria-hidden': 'true' }, h('span', {}), h('span', {}), h('span', {})),
        h('span', { class: 'sr-only' }));
      // Under the label and the other marks, so they stay readable and clicks go through them.
      tile.querySelector('.tile-video')?.after(tile.pinButton);
      tile.appendChild(tile.fullscreenButton);
      tile.querySelector('.tile-label')?.appendChild(tile.quality);
    }
    if (tile.who !== who) {
      tile.who = who;
      tile.pinButton.setAttribute('aria-label', t('stage.pin', { name: who }));
      tile.fullscreenButton.setAttribute('aria-label', t('stage.fullscreen', { name: who }));
      this.markPinned();
      this.markFullscreen();
    }
  }

  /** The connection quality LiveKit reports for the person a tile shows. */
  setQuality(tile, quality) {
    const known = QUALITIES.has(quality) ? quality : 'unknown';
    const mark = tile.quality;
    if (!mark || mark.dataset.quality === known) return;
    mark.dataset.quality = known;
    // Until LiveKit has measured anything there is nothing to say.
    mark.hidden = known === 'unknown';
    const text = known === 'unknown' ? '' : t('stage.quality', { quality: t(`stage.quality.${known}`) });
    mark.title = text;
    mark.lastElementChild.textContent = text ? `, ${text}` : '';
  }

  toggle(key) {
    this.pin(this.pinnedKey === key ? null : key);
  }

  pin(key) {
    const before = this.pinnedKey;
    this.pinnedKey = key && this.tiles.has(key) ? key : null;
    this.arrange(this.tiles, this.localIdentity);
    // The Unpin button goes with the layout: the focus goes back to the tile it was about.
    if (!this.pinnedKey && before && document.activeElement === document.body) {
      this.tiles.get(before)?.pinButton?.focus({ preventScroll: true });
    }
  }

  /**
   * Lays the tiles out. Called by the stage after every change of its tiles.
   * @param {Map<string, any>} tiles  by key: `{identity}:camera` or `{identity}:screen`
   * @param {string} localIdentity  this page's own LiveKit identity
   */
  arrange(tiles, localIdentity) {
    this.tiles = tiles;
    this.localIdentity = localIdentity;
    // A moved element loses the focus: a keyboard user who pinned a tile stays on its button.
    const focused = document.activeElement;
    // A pinned tile that went away (its person left, the share ended) frees the stage.
    if (this.pinnedKey && !tiles.has(this.pinnedKey)) this.pinnedKey = null;
    const entries = [...tiles];
    const screens = entries.filter(([key]) => key.endsWith(':screen'));
    // Screen shares go first: they are what people look at.
    const ordered = [...screens, ...entries.filter(([key]) => !key.endsWith(':screen'))];
    let focusKey = this.pinnedKey;
    let mode = focusKey ? 'pinned' : 'grid';
    if (!focusKey && screens.length) {
      // Someone else's share before one's own: one's own screen, large, is a mirror in a mirror.
      const share = [...screens].reverse().find(([, tile]) => tile.dataset.identity !== localIdentity) || screens[0];
      focusKey = share[0];
      mode = 'presenter';
    }
    this.grid.dataset.layout = mode;
    if (mode === 'grid') {
      place(this.grid, ordered.map(([, tile]) => tile));
      delete this.grid.dataset.strip;
    } else {
      const others = ordered.filter(([key]) => key !== focusKey).map(([, tile]) => tile);
      place(this.main, [tiles.get(focusKey), mode === 'pinned' ? this.unpinButton : null].filter(Boolean));
      place(this.strip, others);
      place(this.grid, [this.main, this.strip]);
      this.grid.dataset.strip = String(others.length);
    }
    for (const [key, tile] of tiles) tile.classList.toggle('tile-focus', key === focusKey);
    this.markPinned();
    if (focused instanceof HTMLElement && focused.isConnected && document.activeElement !== focused) {
      focused.focus({ preventScroll: true });
    }
  }

  markPinned() {
    for (const [key, tile] of this.tiles) {
      const pinned = key === this.pinnedKey;
      tile.classList.toggle('tile-pinned', pinned);
      tile.pinButton?.setAttribute('aria-pressed', pinned ? 'true' : 'false');
      if (tile.pinButton) tile.pinButton.title = pinned ? t('stage.unpin') : t('stage.pin.hint');
    }
  }

  fullscreen(tile) {
    if (document.fullscreenElement === tile) {
      document.exitFullscreen().catch(() => {});
      return;
    }
    // Refused (no user gesture, a policy): the tile stays where it is, nothing to report.
    tile.requestFullscreen?.().catch(() => {});
  }

  markFullscreen() {
    for (const tile of this.tiles.values()) {
      const full = document.fullscreenElement === tile;
      tile.fullscreenButton?.setAttribute('aria-pressed', full ? 'true' : 'false');
      if (tile.fullscreenButton) tile.fullscreenButton.title = full ? t('stage.fullscreen.exit') : t('stage.fullscreen.hint');
    }
  }

  destroy() {
    document.removeEventListener('fullscreenchange', this.onFullscreen);
  }
}

/**
 * The one "reconnecting" line of a meeting, at its top, for video and chat together: a polite
 * live region that says which of the two is away, and is empty once both are back. It stays in
 * the page while empty, so that screen readers announce it when it fills.
 */
export class ReconnectBanner {
  constructor() {
    /** @type {{video: boolean, chat: boolean}} */
    this.away = { video: false, chat: false };
    this.key = '';
    this.element = h('div', { class: 'reconnect-banner', role: 'status', testid: 'reconnect-banner',
      dataset: { video: 'ok', chat: 'ok' } });
  }

  /** @param {'video' | 'chat'} part  @param {boolean} reconnecting */
  set(part, reconnecting) {
    if (this.away[part] === reconnecting) return;
    this.away[part] = reconnecting;
    this.element.dataset[part] = reconnecting ? 'reconnecting' : 'ok';
    const { video, chat } = this.away;
    const key = video && chat ? 'reconnect.both' : video ? 'reconnect.video' : chat ? 'reconnect.chat' : '';
    if (key === this.key) return;
    this.key = key;
    this.element.classList.toggle('reconnect-banner-on', Boolean(key));
    if (key) mount(this.element, h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', {}, t(key)));
    else this.element.replaceChildren();
  }
}
