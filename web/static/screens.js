// Full-page screens for the ways a visit can end: not found, full, ended, removed, rate limited.

import { h, mount } from './dom.js';
import { t } from './i18n.js';

function screen({ testid, icon, title, text, actions }) {
  return h(
    'section',
    { class: 'screen card', testid, role: 'alert' },
    h('div', { class: `screen-icon screen-icon-${icon}`, 'aria-hidden': 'true' }),
    h('h1', { class: 'screen-title' }, title),
    text ? h('p', { class: 'screen-text' }, text) : null,
    h('div', { class: 'screen-actions' }, actions),
  );
}

function homeButton(navigate, primary = true) {
  return h(
    'button',
    { type: 'button', class: primary ? 'btn btn-primary' : 'btn', onclick: () => navigate('/') },
    t('screen.home'),
  );
}

export function showNotFound(root, navigate) {
  mount(root, screen({
    testid: 'screen-not-found',
    icon: 'search',
    title: t('screen.notFound.title'),
    text: t('screen.notFound.text'),
    actions: [homeButton(navigate)],
  }));
}

/**
 * @param {HTMLElement} root
 * @param {(path: string) => void} navigate
 * @param {{maxParticipants?: number, onRetry?: () => void}} [options]
 */
export function showFull(root, navigate, { maxParticipants, onRetry } = {}) {
  mount(root, screen({
    testid: 'screen-full',
    icon: 'full',
    title: t('screen.full.title'),
    text: maxParticipants
      ? t('screen.full.text', { max: maxParticipants })
      : t('screen.full.textNoMax'),
    actions: [
      onRetry ? h('button', { type: 'button', class: 'btn btn-primary', onclick: onRetry }, t('screen.retry')) : null,
      homeButton(navigate, !onRetry),
    ],
  }));
}

/**
 * @param {HTMLElement} root
 * @param {(path: string) => void} navigate
 * @param {{beforeJoin?: boolean}} [options]  the visitor never got into this meeting
 */
export function showEnded(root, navigate, { beforeJoin = false } = {}) {
  const section = screen({
    testid: 'screen-ended',
    icon: 'ended',
    title: t(beforeJoin ? 'screen.endedBeforeJoin.title' : 'screen.ended.title'),
    text: t(beforeJoin ? 'screen.endedBeforeJoin.text' : 'screen.ended.text'),
    actions: [homeButton(navigate)],
  });
  section.dataset.variant = beforeJoin ? 'before-join' : 'after-join';
  mount(root, section);
}

export function showKicked(root, navigate) {
  mount(root, screen({
    testid: 'screen-kicked',
    icon: 'kicked',
    title: t('screen.kicked.title'),
    text: t('screen.kicked.text'),
    actions: [homeButton(navigate)],
  }));
}

/** A host of a room with a waiting room denied this browser's request to join. */
export function showDenied(root, navigate) {
  mount(root, screen({
    testid: 'screen-lobby-denied',
    icon: 'kicked',
    title: t('screen.denied.title'),
    text: t('screen.denied.text'),
    actions: [homeButton(navigate)],
  }));
}

/** Counts the Retry-After seconds down, then offers the retry. Returns a cleanup function. */
export function showRateLimited(root, navigate, { seconds, onRetry }) {
  let left = Math.max(1, Math.ceil(Number(seconds) || 1));
  const text = h('p', { class: 'screen-text', testid: 'rate-limited-text' });
  const retry = h(
    'button',
    { type: 'button', class: 'btn btn-primary', disabled: true, onclick: () => onRetry?.() },
    t('screen.retry'),
  );
  const render = () => {
    text.textContent = left > 0 ? t('screen.rateLimited.text', { seconds: left }) : t('screen.rateLimited.ready');
    retry.disabled = left > 0;
  };
  render();
  const section = screen({
    testid: 'screen-rate-limited',
    icon: 'wait',
    title: t('screen.rateLimited.title'),
    text: null,
    actions: [onRetry ? retry : null, homeButton(navigate, !onRetry)],
  });
  section.insertBefore(text, section.querySelector('.screen-actions'));
  mount(root, section);
  const timer = setInterval(() => {
    left -= 1;
    render();
    if (left <= 0) clearInterval(timer);
  }, 1000);
  return () => clearInterval(timer);
}

/**
 * @param {HTMLElement} root
 * @param {(path: string) => void} navigate
 * @param {{detail?: string, onRetry?: () => void}} [options]
 */
export function showError(root, navigate, { detail, onRetry } = {}) {
  mount(root, screen({
    testid: 'screen-error',
    icon: 'error',
    title: t('screen.error.title'),
    text: detail || t('screen.error.text'),
    actions: [
      onRetry ? h('button', { type: 'button', class: 'btn btn-primary', onclick: onRetry }, t('screen.retry')) : null,
      homeButton(navigate, !onRetry),
    ],
  }));
}
