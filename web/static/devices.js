// Which camera, microphone and speaker the page uses, and the microphone's level meter.
// The choice is kept in this browser: pre-join remembers it, the meeting publishes with it
// (media.js hands it to LiveKit), and the next visit starts with it. Like the rest of the
// media code, nothing here may break the page: a device that fails ends in a notice.

import { h } from './dom.js';
import { t } from './i18n.js';

const STORE_KEY = 'veche.devices';
/** The kinds enumerateDevices() reports, in the order the choices are shown. */
export const KINDS = /** @type {const} */ (['videoinput', 'audioinput', 'audiooutput']);
const NAMES = { videoinput: 'camera', audioinput: 'mic', audiooutput: 'speaker' };
// The meter shows -60…0 dBFS: quieter than that is silence for a voice.
const FLOOR_DB = -60;
// Each reading falls this much from the one before at most, so short syllables stay visible.
const FALL = 4;
const METER_INTERVAL_MS = 60;

let ids = 0;

function stored() {
  try {
    const value = JSON.parse(window.localStorage.getItem(STORE_KEY) || '{}');
    return value && typeof value === 'object' ? value : {};
  } catch {
    return {};
  }
}

/** The deviceId chosen for `kind` in this browser, or '' (the browser's default). */
export function chosenDevice(kind) {
  const id = stored()[kind];
  return typeof id === 'string' ? id : '';
}

export function rememberDevice(kind, deviceId) {
  try {
    const choice = stored();
    if (deviceId) choice[kind] = deviceId;
    else delete choice[kind];
    window.localStorage.setItem(STORE_KEY, JSON.stringify(choice));
  } catch {
    // Not kept: the choice lasts as long as the page.
  }
}

/** Whether the page can choose where sound plays (no setSinkId in Firefox before 116, Safari). */
export function speakerChoiceSupported() {
  return typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;
}

/**
 * The chosen devices as LiveKit room options: the tracks LiveKit opens after the join use them.
 * Only a device the browser still lists is asked for, and then as `exact` (an `ideal` one may
 * be passed over for the default): one that went away leaves LiveKit to the default.
 */
export async function roomDeviceOptions() {
  const options = {};
  const lists = await listDevices();
  const listed = (kind) => {
    const id = chosenDevice(kind);
    return id && lists[kind].some((device) => device.id === id) ? id : '';
  };
  const camera = listed('videoinput');
  const mic = listed('audioinput');
  const speaker = listed('audiooutput');
  if (camera) options.videoCaptureDefaults = { deviceId: { exact: camera } };
  if (mic) options.audioCaptureDefaults = { deviceId: { exact: mic } };
  if (speaker && speakerChoiceSupported()) options.audioOutput = { deviceId: speaker };
  return options;
}

/**
 * The devices of each kind, each with a label to show. Before the browser was allowed to use
 * the camera and microphone their labels are empty (and sometimes their ids): "Camera 1" then.
 * @returns {Promise<Record<string, Array<{id: string, label: string}>>>}
 */
export async function listDevices() {
  /** @type {Record<string, Array<{id: string, label: string}>>} */
  const lists = { videoinput: [], audioinput: [], audiooutput: [] };
  if (!navigator.mediaDevices?.enumerateDevices) return lists;
  let devices;
  try {
    devices = await navigator.mediaDevices.enumerateDevices();
  } catch {
    return lists;
  }
  for (const device of devices) {
    const list = lists[device.kind];
    if (!list || list.some((known) => known.id === device.deviceId)) continue;
    const label = device.label || t(`devices.${NAMES[device.kind]}.n`, { n: list.length + 1 });
    list.push({ id: device.deviceId, label });
  }
  return lists;
}

/**
 * One native <select> with a visible <label> per kind of device. `current(kind)` says which
 * device is in use; `onChoose(kind, deviceId)` is called when the person picks another one.
 * The lists follow devices plugged in or out (`devicechange`) until `stop()`.
 */
export class DevicePicker {
  /**
   * @param {object} options
   * @param {(kind: string) => string} options.current
   * @param {(kind: string, deviceId: string) => unknown} options.onChoose
   * @param {Partial<Record<string, Node>>} [options.extras]  shown under a kind's select (the meter)
   */
  constructor({ current, onChoose, extras = {} }) {
    this.current = current;
    this.onChoose = onChoose;
    this.selects = new Map();
    this.fields = new Map();
    this.stopped = false;
    const fields = KINDS.map((kind) => {
      ids += 1;
      const id = `device-${kind}-${ids}`;
      const select = /** @type {HTMLSelectElement} */ (h('select', {
        id, class: 'device-select', testid: `device-${kind}`,
        onchange: () => this.onChoose(kind, select.value),
      }));
      this.selects.set(kind, select);
      const field = h('div', { class: 'field device-field', testid: `device-field-${kind}` },
        h('label', { class: 'field-label', for: id }, t(`devices.${NAMES[kind]}`)),
        select,
        extras[kind] || null);
      // Where sound plays cannot be chosen in every browser: no select is better than a dead one.
      field.hidden = kind === 'audiooutput' && !speakerChoiceSupported();
      this.fields.set(kind, field);
      return field;
    });
    this.element = h('div', { class: 'device-picker', testid: 'device-picker' }, fields);
    this.onDeviceChange = () => this.refresh();
    navigator.mediaDevices?.addEventListener?.('devicechange', this.onDeviceChange);
  }

  /** Lists the devices again and selects the ones in use. */
  async refresh() {
    const lists = await listDevices();
    if (this.stopped) return;
    for (const [kind, select] of this.selects) {
      const list = lists[kind];
      const wanted = this.current(kind);
      const options = list.map(({ id, label }) => h('option', { value: id }, label));
      if (!options.length) options.push(h('option', { value: '' }, t('devices.none')));
      select.replaceChildren(...options);
      select.disabled = !list.length;
      // The device in use, else the remembered one, else the browser's default (listed first).
      if (wanted && list.some(({ id }) => id === wanted)) select.value = wanted;
      else select.selectedIndex = 0;
    }
  }

  stop() {
    this.stopped = true;
    navigator.mediaDevices?.removeEventListener?.('devicechange', this.onDeviceChange);
  }
}

/**
 * How loud the microphone is, as a native <meter> (0–100): an AnalyserNode reads the track
 * a few times a second. `attach(null)` (microphone off) and `stop()` close the AudioContext,
 * so nothing listens while the person does not speak into the page.
 */
export class LevelMeter {
  constructor() {
    this.element = /** @type {HTMLMeterElement} */ (h('meter', {
      class: 'level-meter', testid: 'mic-level', min: '0', max: '100', low: '70', high: '90', optimum: '50',
      value: '0', 'aria-label': t('devices.level'),
    }));
    this.track = null;
    this.context = null;
    this.timer = 0;
    this.resume = () => {
      this.context?.resume().catch(() => {});
    };
  }

  /** @param {MediaStreamTrack | null} track  the live microphone track, or null when it is off */
  attach(track) {
    const usable = track && track.readyState === 'live' && track.enabled ? track : null;
    if (usable === this.track && (usable === null || this.context)) return;
    this.stop();
    if (!usable || !window.AudioContext) return;
    try {
      const context = new AudioContext();
      const analyser = context.createAnalyser();
      analyser.fftSize = 1024;
      context.createMediaStreamSource(new MediaStream([usable])).connect(analyser);
      this.context = context;
      this.track = usable;
      // Without a click or a key press the browser may keep the context suspended; the first one
      // wakes it (the name field is typed into anyway).
      if (context.state === 'suspended') {
        context.resume().catch(() => {});
        document.addEventListener('pointerdown', this.resume, true);
        document.addEventListener('keydown', this.resume, true);
      }
      const samples = new Float32Array(analyser.fftSize);
      this.timer = window.setInterval(() => {
        if (usable.readyState !== 'live' || !usable.enabled) {
          this.attach(null);
          return;
        }
        analyser.getFloatTimeDomainData(samples);
        let sum = 0;
        for (const sample of samples) sum += sample * sample;
        const rms = Math.sqrt(sum / samples.length);
        const db = rms > 0 ? 20 * Math.log10(rms) : -Infinity;
        const level = Math.max(0, Math.min(100, Math.round(((db - FLOOR_DB) / -FLOOR_DB) * 100)));
        this.element.value = Math.max(level, this.element.value - FALL);
      }, METER_INTERVAL_MS);
    } catch {
      this.stop();
    }
  }

  stop() {
    clearInterval(this.timer);
    this.timer = 0;
    document.removeEventListener('pointerdown', this.resume, true);
    document.removeEventListener('keydown', this.resume, true);
    this.context?.close().catch(() => {});
    this.context = null;
    this.track = null;
    this.element.value = 0;
  }
}

/**
 * The device choices under the pre-join preview: picking a camera or microphone restarts the
 * preview with it (and remembers it), the speaker is only remembered (nothing plays here yet).
 * `update()` follows the preview; `stop()` goes with it.
 */
export class PrejoinDevices {
  /** @param {import('./media.js').DevicePreview} preview */
  constructor(preview) {
    this.preview = preview;
    this.meter = new LevelMeter();
    this.picker = new DevicePicker({
      current: (kind) => (kind === 'audiooutput' ? '' : preview.deviceInUse(kind)) || chosenDevice(kind),
      onChoose: (kind, deviceId) => preview.useDevice(kind, deviceId),
      extras: { audioinput: this.meter.element },
    });
    this.element = h('fieldset', { class: 'devices devices-prejoin', testid: 'prejoin-device-settings' },
      h('legend', { class: 'sr-only' }, t('devices.title')),
      this.picker.element);
    this.labelled = false;
  }

  update() {
    const preview = this.preview;
    this.meter.attach(preview.micOn ? preview.stream.getAudioTracks()[0] || null : null);
    // The labels come with the permission, i.e. with the first track: listed again then.
    const labelled = preview.stream.getTracks().length > 0;
    if (labelled !== this.labelled || !this.picker.selects.get('videoinput').options.length) {
      this.labelled = labelled;
      this.picker.refresh();
    } else {
      for (const kind of ['videoinput', 'audioinput']) {
        const inUse = preview.deviceInUse(kind);
        const select = this.picker.selects.get(kind);
        if (inUse && [...select.options].some((option) => option.value === inUse)) select.value = inUse;
      }
    }
  }

  stop() {
    this.meter.stop();
    this.picker.stop();
  }
}

/**
 * The meeting's "Devices" dialog (a native modal <dialog>): the three choices, switched in the
 * live call through the stage, the microphone's meter, and the Sounds switch.
 * @param {{ stage: import('./media.js').MediaStage, sounds: Node, onClose?: () => void }} options
 */
export function openDevicesDialog({ stage, sounds, onClose }) {
  ids += 1;
  const titleId = `devices-title-${ids}`;
  const meter = new LevelMeter();
  const picker = new DevicePicker({
    current: (kind) => stage.activeDevice(kind) || chosenDevice(kind),
    onChoose: async (kind, deviceId) => {
      rememberDevice(kind, deviceId);
      await stage.switchDevice(kind, deviceId);
      meter.attach(stage.micTrack());
      picker.refresh();
    },
    extras: { audioinput: meter.element },
  });
  const closeButton = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'devices-close' },
    t('devices.close'));
  const dialog = /** @type {HTMLDialogElement} */ (h('dialog', {
    class: 'dialog card devices-dialog', testid: 'devices-dialog', 'aria-labelledby': titleId,
  },
  h('form', { method: 'dialog', class: 'dialog-form' },
    h('h2', { class: 'dialog-title', id: titleId }, t('devices.title')),
    h('div', { class: 'devices' }, picker.element),
    sounds,
    h('div', { class: 'dialog-actions' }, closeButton))));
  const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  // The meter follows the microphone while the dialog is open (muted, unmuted, switched).
  const follow = window.setInterval(() => meter.attach(stage.micTrack()), 500);
  dialog.addEventListener('close', () => {
    clearInterval(follow);
    meter.stop();
    picker.stop();
    dialog.remove();
    if (opener?.isConnected) opener.focus({ preventScroll: true });
    onClose?.();
  }, { once: true });
  document.body.appendChild(dialog);
  picker.refresh();
  meter.attach(stage.micTrack());
  dialog.showModal();
  picker.selects.get('videoinput').focus();
  return dialog;
}
