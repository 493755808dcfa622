// Camera and microphone: the pre-join preview, and the LiveKit video stage inside a meeting.
// Nothing here may break the page: every failure ends in a notice, never in an exception.

import { api, ApiError } from './api.js';
import { chosenDevice, rememberDevice, roomDeviceOptions } from './devices.js';
import { announce, h, hueClass, initials, mount, toast } from './dom.js';
import { t } from './i18n.js';
import { StageLayout } from './stage.js';

// livekit-client's worker that encrypts and decrypts media frames in end-to-end encrypted rooms.
// build.mjs builds it on its own (a worker is a separate script) and puts its content-hashed
// URL here.
const E2EE_WORKER = VECHE_E2EE_WORKER;
const CONNECT_TIMEOUT_MS = 8000;
const OWN_CHANGE_GRACE_MS = 1500;
// After a connection the platform did not end (LiveKit restarted, the network dropped), the
// stage connects again with a fresh token, waiting this long, doubling up to the cap.
const RECONNECT_BASE_MS = 1000;
const RECONNECT_MAX_MS = 15000;
const VIDEO_CONSTRAINTS = { width: { ideal: 1280 }, height: { ideal: 720 }, facingMode: 'user' };
const AUDIO_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true };

/** A translated, short reason for a getUserMedia failure. */
export function deviceErrorReason(error) {
  switch (error?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return t('device.denied');
    case 'NotFoundError':
    case 'OverconstrainedError':
      return t('device.notFound');
    case 'NotReadableError':
    case 'AbortError':
      return t('device.busy');
    default:
      return t('device.other');
  }
}

export function mediaDevicesSupported() {
  return Boolean(navigator.mediaDevices?.getUserMedia);
}

export function screenShareSupported() {
  return Boolean(navigator.mediaDevices?.getDisplayMedia);
}

function icon(name) {
  return h('span', { class: `icon icon-${name}`, 'aria-hidden': 'true' });
}

/**
 * A round toggle button for mic / camera / screen. `update(on)` switches its look and state.
 * Its accessible name (`name`) stays the same and `aria-pressed` tells the state; only the
 * tooltip says what a click does.
 */
export function toggleButton({ testid, iconOn, iconOff, labelOn, labelOff, text, name, onclick }) {
  const glyph = icon(iconOn);
  const caption = h('span', { class: 'toggle-caption' }, text);
  const button = h('button', { type: 'button', class: 'toggle', testid, onclick, 'aria-label': name || text },
    glyph, caption);
  button.update = (on, disabled = false) => {
    button.classList.toggle('toggle-off', !on);
    button.setAttribute('aria-pressed', on ? 'true' : 'false');
    button.title = on ? labelOn : labelOff;
    glyph.className = `icon icon-${on ? iconOn : iconOff}`;
    button.disabled = disabled;
  };
  return button;
}

/**
 * The local camera preview before joining. `micOn` / `camOn` are the user's choice, which the
 * meeting applies when it publishes to LiveKit: both start on, and a device that cannot be
 * opened turns its choice off. Joining before the devices are up keeps the choice.
 */
export class DevicePreview {
  constructor(videoElement, onChange) {
    this.video = videoElement;
    this.onChange = onChange;
    this.stream = new MediaStream();
    this.micOn = true;
    this.camOn = true;
    this.error = '';
    this.stopped = false;
    /** The camera and microphone to open: the remembered choice, '' for the browser's default. */
    this.deviceIds = { videoinput: chosenDevice('videoinput'), audioinput: chosenDevice('audioinput') };
  }

  /**
   * The constraints of one kind with the chosen device, as `exact`: browsers (Chromium at least)
   * may open their default device for a merely `ideal` one. A device gone since is handled by
   * `acquire`, which falls back to the default.
   */
  constraints(kind) {
    const base = kind === 'video' ? VIDEO_CONSTRAINTS : AUDIO_CONSTRAINTS;
    const id = this.deviceIds[kind === 'video' ? 'videoinput' : 'audioinput'];
    if (!id) return base;
    // A chosen device says which camera it is; facingMode would only compete with it.
    /** @type {MediaTrackConstraints} */
    const rest = { ...base };
    delete rest.facingMode;
    return { ...rest, deviceId: { exact: id } };
  }

  async start() {
    if (!mediaDevicesSupported()) {
      this.micOn = false;
      this.camOn = false;
      this.error = window.isSecureContext ? t('prejoin.devices.failed', { reason: t('device.other') })
        : t('prejoin.devices.insecure');
      this.changed();
      return;
    }
    try {
      // One request, so the browser asks once for both devices.
      this.adopt(await navigator.mediaDevices.getUserMedia({
        video: this.constraints('video'), audio: this.constraints('audio'),
      }));
    } catch {
      // One of the two may still work on its own (no camera, or the camera is busy).
      const failures = [];
      for (const kind of ['video', 'audio']) {
        try {
          await this.acquire(kind);
        } catch (error) {
          failures.push(error);
          if (kind === 'video') this.camOn = false;
          else this.micOn = false;
        }
      }
      if (failures.length === 2) {
        this.error = t('prejoin.devices.failed', { reason: deviceErrorReason(failures[0]) });
      }
    }
    this.changed();
  }

  async acquire(kind) {
    const key = kind === 'video' ? 'videoinput' : 'audioinput';
    try {
      this.adopt(await navigator.mediaDevices.getUserMedia({ [kind]: this.constraints(kind) }));
    } catch (error) {
      // The remembered device is not there any more (unplugged): the browser's default then.
      if (!this.deviceIds[key] || !['OverconstrainedError', 'NotFoundError'].includes(error?.name)) throw error;
      this.deviceIds[key] = '';
      this.adopt(await navigator.mediaDevices.getUserMedia({ [kind]: this.constraints(kind) }));
    }
  }

  /** The deviceId of the live camera or microphone track, '' without one. */
  deviceInUse(kind) {
    const tracks = kind === 'videoinput' ? this.stream.getVideoTracks() : this.stream.getAudioTracks();
    const live = tracks.find((track) => track.readyState === 'live');
    return live?.getSettings().deviceId || '';
  }

  /**
   * Another camera or microphone (or speaker) picked under the preview: remembered for the
   * meeting, and a device in use is reopened with it at once.
   */
  useDevice(kind, deviceId) {
    rememberDevice(kind, deviceId);
    if (kind !== 'videoinput' && kind !== 'audioinput') return Promise.resolve();
    this.deviceIds[kind] = deviceId;
    // One reopening at a time: arrowing through a focused <select> picks several in a row, and
    // the last one picked must be the one that stays open.
    this.reopening = (this.reopening || Promise.resolve()).then(() => this.reopen(kind));
    return this.reopening;
  }

  async reopen(kind) {
    const video = kind === 'videoinput';
    const tracks = video ? this.stream.getVideoTracks() : this.stream.getAudioTracks();
    const inUse = tracks.find((track) => track.readyState === 'live')?.getSettings().deviceId;
    if (this.stopped || !tracks.length || !mediaDevicesSupported() || inUse === this.deviceIds[kind]) return;
    // The old one is released first: some devices cannot be opened twice.
    for (const track of tracks) {
      track.stop();
      this.stream.removeTrack(track);
    }
    try {
      await this.acquire(video ? 'video' : 'audio');
    } catch (error) {
      if (video) this.camOn = false;
      else this.micOn = false;
      toast(t('media.deviceError', { reason: deviceErrorReason(error) }), 'error');
    }
    this.changed();
  }

  /** Takes the tracks of a fresh stream, honouring choices made while the browser was asking. */
  adopt(stream) {
    for (const track of stream.getTracks()) {
      const wanted = track.kind === 'video' ? this.camOn : this.micOn;
      if (this.stopped || (track.kind === 'video' && !wanted)) {
        track.stop();
        continue;
      }
      track.enabled = wanted;
      this.stream.addTrack(track);
    }
    if (this.stream.getVideoTracks().length && !this.stopped) {
      this.video.srcObject = this.stream;
      this.video.play().catch(() => {});
    }
  }

  async setCamera(on) {
    if (on === this.camOn) return;
    this.camOn = on;
    if (on) {
      try {
        if (mediaDevicesSupported()) await this.acquire('video');
        this.error = '';
      } catch (error) {
        this.camOn = false;
        toast(t('media.deviceError', { reason: deviceErrorReason(error) }), 'error');
      }
    } else {
      // Stopped, not just disabled, so the camera light goes off.
      for (const track of this.stream.getVideoTracks()) {
        track.stop();
        this.stream.removeTrack(track);
      }
    }
    this.changed();
  }

  async setMic(on) {
    if (on === this.micOn) return;
    this.micOn = on;
    if (on && this.stream.getAudioTracks().length === 0 && mediaDevicesSupported()) {
      try {
        await this.acquire('audio');
        this.error = '';
      } catch (error) {
        this.micOn = false;
        toast(t('media.deviceError', { reason: deviceErrorReason(error) }), 'error');
      }
    }
    for (const track of this.stream.getAudioTracks()) track.enabled = this.micOn;
    this.changed();
  }

  get hasVideo() {
    return this.stream.getVideoTracks().some((track) => track.readyState === 'live');
  }

  changed() {
    if (!this.stopped) this.onChange?.(this);
  }

  /** Releases the devices (LiveKit opens its own tracks after the join). */
  stop() {
    this.stopped = true;
    for (const track of this.stream.getTracks()) track.stop();
    this.video.srcObject = null;
  }
}

function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error('timeout')), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The video area of a meeting: connects to LiveKit with a token from the media-token service,
 * shows one tile per participant (plus one per screen share), and the mic / camera / screen
 * controls. Tiles are keyed by LiveKit identity, which is the participant's public id.
 */
export class MediaStage {
  /**
   * @param {object} options
   * @param {string} options.roomId
   * @param {string} options.selfName
   * @param {boolean} options.wantMic
   * @param {boolean} options.wantCamera
   * @param {(ids: Set<string>) => void} [options.onActiveSpeakers]
   * @param {{key: Uint8Array|null} | null} [options.e2ee]  set in end-to-end encrypted rooms;
   *   `key` is the room key from the link (null when the link has none)
   * @param {(identity: string) => void} [options.onUndecryptable]  a remote's media failed to decrypt
   * @param {(identity: string) => void} [options.onDecrypted]  a remote's video decoded (e2ee rooms)
   * @param {(reconnecting: boolean) => void} [options.onReconnecting]  the meeting's banner says
   *   "reconnecting" instead of the stage
   */
  constructor({
    roomId, selfName, wantMic, wantCamera, onActiveSpeakers, e2ee = null, onUndecryptable, onDecrypted, onReconnecting,
  }) {
    this.roomId = roomId;
    this.selfName = selfName;
    this.wantMic = wantMic;
    this.wantCamera = wantCamera;
    this.onActiveSpeakers = onActiveSpeakers || (() => {});
    this.e2ee = e2ee;
    this.onUndecryptable = onUndecryptable || (() => {});
    this.onDecrypted = onDecrypted || (() => {});
    this.onReconnecting = onReconnecting || null;
    /** The E2EE worker of the current LiveKit room (one per room, ended with it). */
    this.worker = null;
    /** Identities whose media this page could not decrypt. */
    this.undecryptable = new Set();
    /** Public ids whose hand is up, marked on their camera tiles. */
    this.hands = new Set();
    this.lk = null;
    this.room = null;
    this.stopped = false;
    // Until this time a mute of our own track is our own doing, not the host's.
    this.ownChangeUntil = 0;
    this.tiles = new Map();
    this.audioElements = new Map();
    this.reconnectAttempts = 0;
    this.reconnectTimer = 0;

    this.notice = h('div', { class: 'stage-notice', hidden: true });
    this.grid = h('div', { class: 'tiles', testid: 'video-grid' });
    // Where the tiles go (grid, presenter, pinned) and their pin / full screen / quality marks.
    this.view = new StageLayout(this.grid);
    this.hint = h('p', { class: 'stage-hint', hidden: true }, t('media.alone'));
    this.audioSink = h('div', { class: 'audio-sink', 'aria-hidden': 'true' });
    this.element = h('div', { class: 'stage', testid: 'video-stage' },
      this.grid, this.hint, this.notice, this.audioSink);

    this.micButton = toggleButton({
      testid: 'toggle-mic', iconOn: 'mic', iconOff: 'mic-off', text: t('media.mic'), name: t('media.mic.name'),
      labelOn: t('media.mic.on'), labelOff: t('media.mic.off'), onclick: () => this.toggleMic(),
    });
    this.camButton = toggleButton({
      testid: 'toggle-camera', iconOn: 'cam', iconOff: 'cam-off', text: t('media.cam'), name: t('media.cam.name'),
      labelOn: t('media.cam.on'), labelOff: t('media.cam.off'), onclick: () => this.toggleCamera(),
    });
    this.screenButton = toggleButton({
      testid: 'toggle-screen', iconOn: 'screen', iconOff: 'screen', text: t('media.screen'),
      name: t('media.screen.name'),
      labelOn: t('media.screen.on'), labelOff: t('media.screen.off'), onclick: () => this.toggleScreen(),
    });
    this.screenButton.hidden = !screenShareSupported();
    this.controls = [this.micButton, this.camButton, this.screenButton];
    this.updateControls();
  }

  /**
   * Connects; on any failure shows "Video is unavailable" with a retry and returns normally.
   * When `reconnecting`, a failure that may pass (LiveKit or the network still away) tries
   * again by itself instead.
   */
  async start({ reconnecting = false } = {}) {
    clearTimeout(this.reconnectTimer);
    // Without the key nothing could be decrypted, and what this page sent could not be read:
    // video stays off, and the stage says why (the room page explains how to get the key).
    if (this.e2ee && !this.e2ee.key) {
      this.showNotice('e2ee-no-key');
      this.updateControls();
      return;
    }
    this.showNotice(reconnecting ? 'reconnecting' : 'connecting');
    this.updateControls();
    try {
      const grant = await api.mediaToken(this.roomId);
      if (this.stopped) return;
      if (!grant?.token || !grant?.url) throw new Error('no token');
      // livekit-client is most of the client's code: a chunk of its own, fetched the first time
      // a meeting starts video and never by the home page or pre-join.
      this.lk = this.lk || (await import('livekit-client'));
      if (this.stopped) return;
      this.lk.setLogLevel?.('warn');
      if (this.e2ee && !this.lk.isE2EESupported()) {
        this.showNotice('e2ee-unsupported');
        this.updateControls();
        return;
      }
      const e2ee = this.e2ee ? await this.encryption() : undefined;
      if (this.stopped) {
        this.endWorker();
        return;
      }
      // A reload or a closed tab must not read as "left the meeting" (LiveKit would report a
      // deliberate leave): the connection just drops, and presence decides. Leave says so.
      const room = new this.lk.Room({
        adaptiveStream: true, dynacast: true, disconnectOnPageLeave: false, e2ee, ...(await roomDeviceOptions()),
      });
      this.room = room;
      this.listen(room);
      try {
        // As livekit-client documents it: the key is set, then encryption enabled, then connect.
        if (e2ee) await room.setE2EEEnabled(true);
        await withTimeout(room.connect(grant.url, grant.token, { autoSubscribe: true }), CONNECT_TIMEOUT_MS);
      } catch (error) {
        this.room = null;
        room.removeAllListeners?.();
        room.disconnect().catch(() => {});
        this.endWorker();
        throw error;
      }
      if (this.stopped) {
        room.disconnect().catch(() => {});
        return;
      }
      this.reconnectAttempts = 0;
      this.hideNotice();
      this.syncAll();
      await this.publishInitial();
    } catch (error) {
      if (this.stopped) return;
      // 403/404/409: not a member any more, or the room ended; the room page says so.
      const final = error instanceof ApiError && error.status >= 400 && error.status < 500;
      if (reconnecting && !final) {
        this.scheduleReconnect();
        return;
      }
      const detail = error instanceof ApiError ? error.describe() : '';
      this.showNotice('unavailable', detail);
      this.clearTiles();
      this.updateControls();
    }
  }

  /**
   * The room options' `e2ee` part: livekit-client's shared-key provider holding the room key
   * (livekit-client derives its frame key from it with HKDF and its own salt), and a fresh
   * worker from /assets/ (the CSP allows workers from this origin only). `e2ee` rather than
   * `encryption`: the latter also encrypts LiveKit data packets, which this client does not send.
   */
  async encryption() {
    this.endWorker();
    // AES-256-GCM frames (livekit-client's default is 128-bit keys; every peer here is a browser).
    const keyProvider = new this.lk.ExternalE2EEKeyProvider({ keySize: 256 });
    await keyProvider.setKey(this.e2ee.key.slice().buffer);
    this.worker = new Worker(E2EE_WORKER, { type: 'module', name: 'veche-e2ee' });
    return { keyProvider, worker: this.worker };
  }

  endWorker() {
    this.worker?.terminate();
    this.worker = null;
  }

  /**
   * livekit-client reports a frame it could not decrypt as EncryptionError, its message
   * starting with the reason: InvalidKey or MissingKey mean the keys differ (our link's key or
   * theirs); anything else (InternalError: a track being set up) is not about the key.
   */
  encryptionError(error, participant) {
    const message = String(error?.message || '');
    if (!/^(InvalidKey|MissingKey)\b/.test(message)) return;
    const identity = participant?.identity;
    if (!identity || participant === this.room?.localParticipant) return;
    if (!this.undecryptable.has(identity)) {
      this.undecryptable.add(identity);
      this.markUndecryptable(identity);
    }
    this.onUndecryptable(identity);
  }

  markUndecryptable(identity) {
    for (const tile of this.tiles.values()) {
      if (tile.dataset.identity !== identity) continue;
      const cannot = this.undecryptable.has(identity) && !(tile.video.videoWidth > 0);
      tile.classList.toggle('tile-undecryptable', cannot);
      tile.dataset.decrypt = cannot ? 'failed' : 'ok';
    }
  }

  /** A remote video that got a size has decoded frames: in an e2ee room, it was decrypted. */
  videoDecoded(tile) {
    const identity = tile.dataset.identity;
    if (!this.e2ee || !identity || !(tile.video.videoWidth > 0)) return;
    if (identity === this.room?.localParticipant?.identity) return;
    this.undecryptable.delete(identity);
    this.markUndecryptable(identity);
    this.onDecrypted(identity);
  }

  /** Marks the camera tiles of the people whose hand is up. */
  setHands(ids) {
    this.hands = new Set(ids);
    for (const [key, tile] of this.tiles) this.markHand(key, tile);
  }

  markHand(key, tile) {
    const raised = key.endsWith(':camera') && this.hands.has(tile.dataset.identity);
    tile.classList.toggle('tile-hand-raised', raised);
    tile.querySelector('.tile-hand').hidden = !raised;
  }

  async publishInitial() {
    const local = this.room?.localParticipant;
    if (!local) return;
    /** @type {Array<[boolean, (on: boolean) => Promise<unknown>]>} */
    const choices = [
      [this.wantMic, (on) => local.setMicrophoneEnabled(on)],
      [this.wantCamera, (on) => local.setCameraEnabled(on)],
    ];
    for (const [wanted, enable] of choices) {
      if (!wanted) continue;
      try {
        this.ownChangeUntil = Infinity;
        await enable(true);
      } catch (error) {
        toast(t('media.deviceError', { reason: deviceErrorReason(error) }), 'error');
      } finally {
        this.ownChangeUntil = Date.now() + OWN_CHANGE_GRACE_MS;
      }
    }
    this.syncParticipant(local);
    this.updateControls();
  }

  listen(room) {
    const { RoomEvent } = this.lk;
    const resync = (participant) => participant && this.syncParticipant(participant);
    room
      .on(RoomEvent.ParticipantConnected, resync)
      .on(RoomEvent.ParticipantDisconnected, (participant) => this.removeParticipant(participant.identity))
      .on(RoomEvent.TrackSubscribed, (_track, _pub, participant) => resync(participant))
      .on(RoomEvent.TrackUnsubscribed, (_track, _pub, participant) => resync(participant))
      .on(RoomEvent.TrackPublished, (_pub, participant) => resync(participant))
      .on(RoomEvent.TrackUnpublished, (_pub, participant) => resync(participant))
      .on(RoomEvent.LocalTrackPublished, () => resync(room.localParticipant))
      .on(RoomEvent.LocalTrackUnpublished, () => resync(room.localParticipant))
      .on(RoomEvent.ParticipantNameChanged, (_name, participant) => resync(participant))
      .on(RoomEvent.TrackMuted, (pub, participant) => {
        resync(participant);
        if (participant === room.localParticipant && Date.now() > this.ownChangeUntil) {
          const kind = pub.kind === 'audio' ? 'audio' : 'video';
          toast(t('media.mutedByHost', { kind: t(`media.kind.${kind}`) }));
        }
      })
      .on(RoomEvent.TrackUnmuted, (_pub, participant) => resync(participant))
      .on(RoomEvent.ActiveSpeakersChanged, (speakers) => this.markSpeakers(speakers))
      .on(RoomEvent.EncryptionError, (error, participant) => this.encryptionError(error, participant))
      .on(RoomEvent.AudioPlaybackStatusChanged, () => this.updateAudioPlayback())
      .on(RoomEvent.MediaDevicesError, (error) => {
        toast(t('media.deviceError', { reason: deviceErrorReason(error) }), 'error');
      })
      .on(RoomEvent.Reconnecting, () => this.showNotice('reconnecting'))
      .on(RoomEvent.SignalReconnecting, () => this.showNotice('reconnecting'))
      .on(RoomEvent.ConnectionQualityChanged, (_quality, participant) => resync(participant))
      .on(RoomEvent.Reconnected, () => {
        this.hideNotice();
        this.syncAll();
      })
      .on(RoomEvent.Disconnected, (reason) => {
        if (this.stopped || this.room !== room) return;
        this.room = null;
        this.endWorker();
        this.clearTiles();
        this.updateControls();
        if (this.endedByPlatform(reason)) this.showNotice('disconnected');
        else this.scheduleReconnect();
      });
  }

  // --- tiles -------------------------------------------------------------------------------

  syncAll() {
    if (!this.room) return;
    this.syncParticipant(this.room.localParticipant);
    for (const participant of this.room.remoteParticipants.values()) this.syncParticipant(participant);
    this.updateAudioPlayback();
  }

  syncParticipant(participant) {
    if (this.stopped || !this.room) return;
    const { Track } = this.lk;
    const isLocal = participant === this.room.localParticipant;
    const name = isLocal ? t('media.you') : participant.name || participant.identity;
    // In an e2ee room a remote track that is not encrypted is never played: nobody with the
    // key sends one, so it can only be a downgrade (a server passing off media of its own).
    const trackOf = (pub) => (pub && (isLocal || !this.e2ee || pub.isEncrypted) ? pub.track || null : null);

    const camera = participant.getTrackPublication(Track.Source.Camera);
    const cameraTile = this.tile(`${participant.identity}:camera`, participant.identity, name, isLocal,
      false, isLocal ? this.selfName : name);
    this.showVideo(cameraTile, camera && !camera.isMuted ? trackOf(camera) : null);
    const mic = participant.getTrackPublication(Track.Source.Microphone);
    const micOff = !mic || mic.isMuted;
    cameraTile.classList.toggle('tile-mic-off', micOff);
    cameraTile.dataset.mic = micOff ? 'off' : 'on';
    cameraTile.querySelector('[data-testid="tile-muted"]').hidden = !micOff;
    this.view.setQuality(cameraTile, participant.connectionQuality);

    const screen = participant.getTrackPublication(Track.Source.ScreenShare);
    const screenKey = `${participant.identity}:screen`;
    if (trackOf(screen) && !screen.isMuted) {
      const screenTile = this.tile(screenKey, participant.identity, t('media.screenOf', { name }), false, true, name);
      this.showVideo(screenTile, trackOf(screen));
      this.view.setQuality(screenTile, participant.connectionQuality);
    } else {
      this.removeTile(screenKey);
    }

    if (!isLocal) {
      for (const source of [Track.Source.Microphone, Track.Source.ScreenShareAudio]) {
        const pub = participant.getTrackPublication(source);
        this.playAudio(`${participant.identity}:${source}`, trackOf(pub));
      }
    }
    if (isLocal) this.updateControls();
    this.layout();
  }

  tile(key, identity, name, mirrored, isScreen, avatarName) {
    let tile = this.tiles.get(key);
    if (!tile) {
      const video = h('video', { class: 'tile-video', autoplay: true, playsinline: true, muted: true });
      video.muted = true;
      tile = h(
        'div',
        { class: `tile ${isScreen ? 'tile-screen' : ''}`, testid: 'video-tile', dataset: { identity } },
        video,
        h('div', { class: `tile-avatar ${hueClass(identity)}`, 'aria-hidden': 'true' }),
        h('div', { class: 'tile-lock', testid: 'tile-undecryptable' },
          h('span', { class: 'icon icon-lock', 'aria-hidden': 'true' }), t('media.e2ee.cannotDecrypt')),
        h('span', { class: 'tile-hand', testid: 'tile-hand', hidden: true, role: 'img', 'aria-label': t('room.hand'),
          title: t('room.hand') }, h('span', { class: 'icon icon-hand', 'aria-hidden': 'true' })),
        h('div', { class: 'tile-label' },
          h('span', { class: 'icon icon-mic-off tile-mic-icon', 'aria-hidden': 'true' }),
          h('span', { class: 'tile-name' }),
          // The crossed-out microphone, in words for screen readers.
          h('span', { class: 'sr-only', testid: 'tile-muted', hidden: true }, ', ', t('media.muted'))),
      );
      tile.video = video;
      tile.videoTrack = null;
      if (!mirrored) video.addEventListener('resize', () => this.videoDecoded(tile));
      video.classList.toggle('mirror', mirrored);
      this.tiles.set(key, tile);
      // Placed by layout(), through the stage's layout.
      this.markHand(key, tile);
      if (this.undecryptable.has(identity)) this.markUndecryptable(identity);
    }
    tile.querySelector('.tile-name').textContent = name;
    tile.querySelector('.tile-avatar').textContent = initials(avatarName || name);
    // The pin and full screen buttons are named after the person (one's own tile: one's name).
    this.view.dress(tile, key, isScreen ? name : avatarName || name);
    return tile;
  }

  showVideo(tile, track) {
    if (tile.videoTrack === track) return;
    if (tile.videoTrack) tile.videoTrack.detach(tile.video);
    tile.videoTrack = track;
    if (track) track.attach(tile.video);
    tile.classList.toggle('tile-has-video', Boolean(track));
  }

  playAudio(key, track) {
    const current = this.audioElements.get(key);
    if (current?.track === track) return;
    if (current) {
      current.track?.detach(current.element);
      current.element.remove();
      this.audioElements.delete(key);
    }
    if (track) {
      const element = track.attach();
      this.audioSink.appendChild(element);
      this.audioElements.set(key, { track, element });
    }
  }

  removeTile(key) {
    const tile = this.tiles.get(key);
    if (!tile) return;
    tile.videoTrack?.detach(tile.video);
    tile.remove();
    this.tiles.delete(key);
  }

  removeParticipant(identity) {
    for (const key of [...this.tiles.keys()]) {
      if (key.startsWith(`${identity}:`)) this.removeTile(key);
    }
    for (const [key, entry] of [...this.audioElements]) {
      if (key.startsWith(`${identity}:`)) {
        entry.track?.detach(entry.element);
        entry.element.remove();
        this.audioElements.delete(key);
      }
    }
    this.layout();
  }

  clearTiles() {
    for (const key of [...this.tiles.keys()]) this.removeTile(key);
    for (const entry of this.audioElements.values()) {
      entry.track?.detach(entry.element);
      entry.element.remove();
    }
    this.audioElements.clear();
    this.onActiveSpeakers(new Set());
    this.layout();
  }

  layout() {
    const count = this.tiles.size;
    this.grid.dataset.count = String(Math.min(count, 10));
    this.view.arrange(this.tiles, this.room?.localParticipant?.identity || '');
    this.hint.hidden = !(this.room && count === 1);
  }

  markSpeakers(speakers) {
    const speaking = new Set(speakers.map((p) => p.identity));
    for (const [key, tile] of this.tiles) {
      tile.classList.toggle('tile-speaking', key.endsWith(':camera') && speaking.has(tile.dataset.identity));
    }
    this.onActiveSpeakers(speaking);
  }

  updateAudioPlayback() {
    if (!this.room || this.room.canPlaybackAudio) {
      this.audioButton?.remove();
      this.audioButton = null;
      return;
    }
    if (this.audioButton) return;
    this.audioButton = h('button', {
      type: 'button', class: 'btn btn-primary stage-audio', testid: 'enable-audio',
      onclick: () => this.room?.startAudio().then(() => this.updateAudioPlayback()).catch(() => {}),
    }, t('media.enableAudio'));
    this.element.appendChild(this.audioButton);
  }

  // --- notices -----------------------------------------------------------------------------

  showNotice(state, detail = '') {
    this.onReconnecting?.(state === 'reconnecting');
    // The meeting's banner says it then; the tiles stay uncovered.
    if (state === 'reconnecting' && this.onReconnecting) {
      this.clearNotice();
      return;
    }
    const notice = this.notice;
    notice.hidden = false;
    notice.className = `stage-notice stage-notice-${state}`;
    delete notice.dataset.testid;
    const unavailable = state === 'unavailable' || state === 'disconnected';
    const e2ee = state === 'e2ee-no-key' || state === 'e2ee-unsupported';
    this.element.classList.toggle('stage-unavailable', unavailable || e2ee);
    if (e2ee) {
      notice.dataset.testid = 'video-e2ee';
      mount(
        notice,
        h('span', { class: 'icon icon-lock stage-notice-icon', 'aria-hidden': 'true' }),
        h('strong', { class: 'stage-notice-title' },
          state === 'e2ee-no-key' ? t('media.e2ee.noKey') : t('media.e2ee.unsupported')),
        // Without the key the chat cannot be read either; with it, only the video is missing.
        state === 'e2ee-no-key' ? null : h('span', { class: 'stage-notice-detail' }, t('media.unavailable.detail')),
      );
    } else if (unavailable) {
      notice.dataset.testid = 'video-unavailable';
      announce(state === 'unavailable' ? t('media.unavailable') : t('media.disconnected'));
      mount(
        notice,
        h('span', { class: 'icon icon-cam-off stage-notice-icon', 'aria-hidden': 'true' }),
        h('strong', { class: 'stage-notice-title' },
          state === 'unavailable' ? t('media.unavailable') : t('media.disconnected')),
        detail ? h('span', { class: 'stage-notice-detail' }, detail.charAt(0).toUpperCase() + detail.slice(1)) : null,
        h('span', { class: 'stage-notice-detail' }, t('media.unavailable.detail')),
        h('button', { type: 'button', class: 'btn btn-small', testid: 'video-retry', onclick: () => this.retry() },
          t('media.retry')),
      );
    } else {
      mount(notice, h('span', { class: 'spinner', 'aria-hidden': 'true' }),
        h('span', {}, state === 'reconnecting' ? t('media.reconnecting') : t('media.connecting')));
    }
  }

  hideNotice() {
    this.onReconnecting?.(false);
    this.clearNotice();
  }

  clearNotice() {
    this.element.classList.remove('stage-unavailable');
    this.notice.hidden = true;
    delete this.notice.dataset.testid;
    this.notice.replaceChildren();
  }

  retry() {
    if (this.room || this.stopped) return;
    this.start();
  }

  /** Whether LiveKit closed the connection on purpose: left, removed, room deleted, opened
   * elsewhere. Anything else (a restart, a lost network) is worth connecting again. */
  endedByPlatform(reason) {
    const R = this.lk?.DisconnectReason || {};
    return [R.CLIENT_INITIATED, R.DUPLICATE_IDENTITY, R.PARTICIPANT_REMOVED, R.ROOM_DELETED]
      .filter((value) => value !== undefined)
      .includes(reason);
  }

  scheduleReconnect() {
    if (this.stopped) return;
    this.showNotice('reconnecting');
    const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** this.reconnectAttempts);
    this.reconnectAttempts += 1;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      if (!this.stopped && !this.room) this.start({ reconnecting: true });
    }, delay);
  }

  // --- controls ----------------------------------------------------------------------------

  updateControls() {
    const local = this.room?.localParticipant;
    const connected = Boolean(local);
    this.micButton.update(connected ? local.isMicrophoneEnabled : this.wantMic, !connected);
    this.camButton.update(connected ? local.isCameraEnabled : this.wantCamera, !connected);
    this.screenButton.update(connected ? local.isScreenShareEnabled : false, !connected);
  }

  async toggle(change, { quietWhenDenied = false } = {}) {
    const local = this.room?.localParticipant;
    if (!local) return;
    this.ownChangeUntil = Infinity;
    try {
      await change(local);
    } catch (error) {
      // Closing the browser's screen picker is a choice, not an error worth a message.
      if (!(quietWhenDenied && error?.name === 'NotAllowedError')) {
        toast(t('media.deviceError', { reason: deviceErrorReason(error) }), 'error');
      }
    } finally {
      this.ownChangeUntil = Date.now() + OWN_CHANGE_GRACE_MS;
      // Remembered so that "Try video again" after a drop restores what the user had on.
      this.wantMic = local.isMicrophoneEnabled;
      this.wantCamera = local.isCameraEnabled;
      if (this.room) this.syncParticipant(this.room.localParticipant);
      this.updateControls();
    }
  }

  toggleMic() {
    return this.toggle((local) => local.setMicrophoneEnabled(!local.isMicrophoneEnabled));
  }

  /** Switches the camera, microphone or speaker of the live call (chosen in the Devices dialog). */
  switchDevice(kind, deviceId) {
    return this.toggle(() => this.room.switchActiveDevice(kind, deviceId));
  }

  /** The deviceId LiveKit uses for `kind` now, '' before the call is up. */
  activeDevice(kind) {
    return this.room?.getActiveDevice(kind) || '';
  }

  /** The microphone track being sent, or null while it is off (for the level meter). */
  micTrack() {
    const local = this.room?.localParticipant;
    if (!local?.isMicrophoneEnabled) return null;
    return local.getTrackPublication(this.lk.Track.Source.Microphone)?.track?.mediaStreamTrack || null;
  }

  toggleCamera() {
    return this.toggle((local) => local.setCameraEnabled(!local.isCameraEnabled));
  }

  toggleScreen() {
    return this.toggle(
      (local) => local.setScreenShareEnabled(!local.isScreenShareEnabled, { audio: true }),
      { quietWhenDenied: true },
    );
  }

  /** Leaves LiveKit and releases camera and microphone. Safe to call more than once. */
  stop() {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    const room = this.room;
    this.room = null;
    this.clearTiles();
    this.view.destroy();
    if (room) room.disconnect().catch(() => {}).finally(() => this.endWorker());
    else this.endWorker();
  }
}
