"""Devices, the microphone's level and the meeting's sounds (issue #18), in a real headless
Chromium through the gateway and the real LiveKit server. Chromium here has two fake cameras,
its three fake microphones (they beep) and three fake speakers: pre-join lists them, a choice
restarts the preview with that device, is remembered across a reload and is what the meeting
publishes; the meeting switches devices without leaving; the level meter moves with the beep
and stops with the microphone; the Sounds switch silences a newcomer and a message that
arrives while the tab is hidden (and a visible tab gets no sound for it). axe finds nothing on
pre-join with its device choices nor on the meeting with the Devices dialog open."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.e2e.support.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOM_PATH,
    OpenTab,
    Tab,
    axe_violations,
    browser_expect,
    create_room,
    join_by_link,
    pass_prejoin,
    send_chat,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

expect = browser_expect()


# Chromium's fake capture offers one camera unless told more; two, so there is a choice.
FAKE_DEVICES = "--use-fake-device-for-media-stream=device-count=2"
DEVICES_KEY = "veche.devices"
SOUNDS_KEY = "veche.lobby_sound"
# The notes of web/static/controls.js: a newcomer (523, 659 Hz) and a hidden-tab message (784).
JOIN_NOTE = 523
MESSAGE_NOTE = 784

# Runs before the page's scripts. Records the frequency of every tone the page starts, every
# AudioContext that listens to a microphone (the meter's), every RTCPeerConnection (to read
# what is really sent), and lets a test say the tab is hidden (headless tabs never are).
HOOKS = """
window.__vecheTones = [];
const start = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (...args) {
  window.__vecheTones.push(Math.round(this.frequency.value));
  return start.apply(this, args);
};
window.__vecheMeters = [];
const source = AudioContext.prototype.createMediaStreamSource;
AudioContext.prototype.createMediaStreamSource = function (stream) {
  window.__vecheMeters.push(this);
  return source.call(this, stream);
};
window.__vechePeers = [];
const Peer = window.RTCPeerConnection;
window.RTCPeerConnection = class extends Peer {
  constructor(...args) {
    super(...args);
    window.__vechePeers.push(this);
  }
};
window.__vecheHidden = false;
Object.defineProperty(Document.prototype, 'hidden', { configurable: true, get: () => window.__vecheHidden });
Object.defineProperty(Document.prototype, 'visibilityState', {
  configurable: true, get: () => (window.__vecheHidden ? 'hidden' : 'visible'),
});
window.__vecheSetHidden = (hidden) => {
  window.__vecheHidden = hidden;
  document.dispatchEvent(new Event('visibilitychange'));
};
"""

# What the browser offers, as the page sees it: [kind, deviceId, label].
DEVICES = """async () => (await navigator.mediaDevices.enumerateDevices())
  .map((d) => [d.kind, d.deviceId, d.label])"""
# The deviceIds of the live tracks of the pre-join preview: {video, audio}.
PREVIEW = """() => {
  const stream = document.querySelector('.preview-video')?.srcObject;
  const of = (tracks) => tracks.find((t) => t.readyState === 'live')?.getSettings().deviceId || null;
  return stream ? { video: of(stream.getVideoTracks()), audio: of(stream.getAudioTracks()) } : null;
}"""
# The deviceIds of the tracks this page sends to LiveKit right now: {video, audio}.
SENT = """() => {
  const sent = { video: null, audio: null };
  for (const peer of window.__vechePeers) {
    if (peer.connectionState === 'closed') continue;
    for (const sender of peer.getSenders()) {
      const track = sender.track;
      if (track && track.readyState === 'live') sent[track.kind] = track.getSettings().deviceId;
    }
  }
  return sent;
}"""
OPEN_PEERS = "() => window.__vechePeers.filter((peer) => peer.connectionState !== 'closed').length"
METER = "() => Number(document.querySelector('[data-testid=\"mic-level\"]')?.value ?? -1)"
METERS_CLOSED = (
    "() => window.__vecheMeters.length > 0 && window.__vecheMeters.every((c) => c.state === 'closed')"
)
TONES = "() => window.__vecheTones.slice()"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser() -> AsyncIterator[object]:
    """This module's own Chromium, with a second fake camera."""
    from playwright.async_api import async_playwright

    args = [arg for arg in CHROMIUM_ARGS if arg != "--use-fake-device-for-media-stream"]
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=[*args, FAKE_DEVICES]
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="session")
async def tabs(tabs: OpenTab) -> OpenTab:
    """The e2e `tabs`, with this module's hooks in every page."""

    async def open_(*, axe: bool = False) -> Tab:
        tab = await tabs(axe=axe)
        await tab.context.add_init_script(HOOKS)
        return tab

    return open_


async def offered(tab: Tab) -> dict[str, list[tuple[str, str]]]:
    """The browser's devices by kind, each as (deviceId, label)."""
    lists: dict[str, list[tuple[str, str]]] = {"videoinput": [], "audioinput": [], "audiooutput": []}
    for kind, device_id, label in await tab.page.evaluate(DEVICES):
        lists[kind].append((device_id, label))
    return lists


async def eventually(tab: Tab, script: str, wanted: object, what: str) -> None:
    """Waits until `script` evaluates to `wanted` in the page."""
    value: object = None
    for _ in range(150):
        value = await tab.page.evaluate(script)
        if value == wanted:
            return
        await tab.page.wait_for_timeout(100)
    raise AssertionError(f"{what}: {value!r}, wanted {wanted!r}")


async def meter_rises(tab: Tab) -> float:
    """Waits until the level meter shows sound (the fake microphone beeps); the level."""
    level = 0.0
    for _ in range(100):
        level = await tab.page.evaluate(METER)
        if level > 0:
            return level
        await tab.page.wait_for_timeout(100)
    raise AssertionError(f"the level meter never moved: {level}")


async def meter_stays_silent(tab: Tab) -> None:
    """The meter shows nothing over a second: longer than between two beeps."""
    for _ in range(10):
        assert await tab.page.evaluate(METER) == 0
        await tab.page.wait_for_timeout(100)


async def create_on_home(tab: Tab, title: str, name: str) -> str:
    """Creates a room with the home page's form and stops on pre-join; the room id."""
    await tab.page.goto("/")
    await tab.by("create-title").fill(title)
    await tab.by("create-name").fill(name)
    await tab.by("create-submit").click()
    await expect(tab.page).to_have_url(ROOM_PATH)
    await expect(tab.by("prejoin")).to_be_visible()
    return tab.room_id()


async def options_of(tab: Tab, kind: str) -> list[tuple[str, str]]:
    return [
        (value, label)
        for value, label in await tab.by(f"device-{kind}")
        .locator("option")
        .evaluate_all("options => options.map((o) => [o.value, o.textContent])")
    ]


# --- 1. pre-join: the lists, a choice restarts the preview, the meter, memory, the meeting ----


async def test_pre_join_devices_are_chosen_remembered_and_published(tabs):
    tab = await tabs(axe=True)
    await create_on_home(tab, "Devices", "Anna")
    devices = await offered(tab)
    assert len(devices["videoinput"]) == 2, devices
    assert len(devices["audioinput"]) >= 2, devices

    # Every camera, microphone and speaker Chromium offers is listed, under its own name.
    for kind in ("videoinput", "audioinput", "audiooutput"):
        await expect(tab.by(f"device-{kind}").locator("option")).to_have_count(len(devices[kind]))
        assert await options_of(tab, kind) == devices[kind]
        name = {"videoinput": "Camera", "audioinput": "Microphone", "audiooutput": "Speaker"}[kind]
        # A native select, named by its visible label.
        await expect(tab.page.get_by_role("combobox", name=name, exact=True)).to_have_attribute(
            "data-testid", f"device-{kind}"
        )
    # The selects show what the preview uses.
    await eventually(
        tab, "() => Boolean(document.querySelector('.preview-video')?.srcObject)", True, "no preview"
    )
    preview = await tab.page.evaluate(PREVIEW)
    assert preview["video"] == devices["videoinput"][0][0]
    await expect(tab.by("device-videoinput")).to_have_value(preview["video"])
    await expect(tab.by("device-audioinput")).to_have_value(preview["audio"])

    # Another camera and another microphone: the preview runs on them at once.
    camera = devices["videoinput"][1][0]
    mic = devices["audioinput"][-1][0]
    await tab.by("device-videoinput").select_option(camera)
    await eventually(
        tab, PREVIEW, {"video": camera, "audio": preview["audio"]}, "the camera was not switched"
    )
    await tab.by("device-audioinput").select_option(mic)
    await eventually(tab, PREVIEW, {"video": camera, "audio": mic}, "the microphone was not switched")
    await expect(tab.page.locator(".preview-video")).to_have_js_property("paused", False)
    # Arrowing through the list picks several in a row: the last one is what stays open.
    await tab.by("device-audioinput").focus()
    for key in ("Home", "ArrowDown", "ArrowDown", "ArrowUp"):
        await tab.page.keyboard.press(key)
    second_mic = devices["audioinput"][1][0]
    await expect(tab.by("device-audioinput")).to_have_value(second_mic)
    await eventually(tab, PREVIEW, {"video": camera, "audio": second_mic}, "not the last one picked")
    await tab.by("device-audioinput").select_option(mic)
    await eventually(tab, PREVIEW, {"video": camera, "audio": mic}, "the microphone was not switched")
    speaker = devices["audiooutput"][-1][0]
    await tab.by("device-audiooutput").select_option(speaker)

    # The meter follows the (beeping) microphone, and stops, its AudioContext closed, with it.
    assert await meter_rises(tab) > 0
    await tab.by("prejoin-mic").click()
    await expect(tab.by("prejoin-mic")).to_have_attribute("aria-pressed", "false")
    await eventually(tab, METERS_CLOSED, True, "a meter still listens to the muted microphone")
    await meter_stays_silent(tab)
    await tab.by("prejoin-mic").click()
    await expect(tab.by("prejoin-mic")).to_have_attribute("aria-pressed", "true")
    assert await meter_rises(tab) > 0

    violations = await axe_violations(tab)
    assert violations == [], "\n".join(violations)
    await tab.screenshot("prejoin-devices")

    # Remembered: after a reload the preview starts on the chosen devices.
    stored = await tab.page.evaluate(f"() => JSON.parse(localStorage.getItem('{DEVICES_KEY}'))")
    assert stored == {"videoinput": camera, "audioinput": mic, "audiooutput": speaker}
    await tab.page.reload()
    await expect(tab.by("prejoin")).to_be_visible()
    await eventually(tab, PREVIEW, {"video": camera, "audio": mic}, "the choice was not remembered")
    await expect(tab.by("device-videoinput")).to_have_value(camera)
    await expect(tab.by("device-audioinput")).to_have_value(mic)
    await expect(tab.by("device-audiooutput")).to_have_value(speaker)

    # Into the meeting: LiveKit sends the chosen camera and microphone.
    await pass_prejoin(tab)
    await eventually(tab, SENT, {"video": camera, "audio": mic}, "the meeting publishes other devices")
    assert not tab.page_errors, tab.page_errors
    assert not tab.csp_reports, tab.csp_reports


# --- 2. the meeting: the Devices dialog switches the live call --------------------------------


async def test_the_meeting_switches_devices_without_leaving(tabs):
    host = await tabs(axe=True)
    guest = await tabs()
    await create_room(host, "Switching", "Anna")
    await join_by_link(guest, await host.by("room-link").input_value(), "Boris")
    devices = await offered(host)
    first_camera, second_camera = devices["videoinput"][0][0], devices["videoinput"][1][0]
    await eventually(host, "() => (" + SENT + ")().video", first_camera, "no camera is sent")
    before = await host.page.evaluate(SENT)
    peers = await host.page.evaluate(OPEN_PEERS)
    # The guest's voice plays in an <audio> of the host's page.
    await eventually(host, "() => document.querySelectorAll('audio').length > 0", True, "no remote audio")

    await host.by("devices-button").click()
    dialog = host.by("devices-dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_role("heading", name="Devices and sounds")).to_be_visible()
    await expect(host.by("device-videoinput")).to_be_focused()
    await expect(host.by("device-videoinput")).to_have_value(first_camera)
    violations = await axe_violations(host)
    assert violations == [], "\n".join(violations)
    await host.screenshot("meeting-devices-dialog")

    # Another camera and microphone: the published tracks change, the call goes on.
    await host.by("device-videoinput").select_option(second_camera)
    await eventually(host, "() => (" + SENT + ")().video", second_camera, "the sent camera did not change")
    mic = next(device for device, _ in devices["audioinput"] if device != before["audio"])
    await host.by("device-audioinput").select_option(mic)
    await eventually(host, SENT, {"video": second_camera, "audio": mic}, "the sent microphone did not change")
    assert await host.page.evaluate(OPEN_PEERS) == peers, "the page connected again"
    await expect(host.by("room")).to_be_visible()
    await expect(host.by("video-unavailable")).to_have_count(0)

    # The speaker: every remote sound of the page plays on the chosen one.
    speaker = devices["audiooutput"][-1][0]
    await host.by("device-audiooutput").select_option(speaker)
    await eventually(
        host,
        "() => [...document.querySelectorAll('audio')].map((a) => a.sinkId)",
        [speaker] * await host.page.locator("audio").count(),
        "the remote audio does not play on the chosen speaker",
    )
    # The meter listens to the microphone being sent.
    assert await meter_rises(host) > 0
    stored = await host.page.evaluate(f"() => JSON.parse(localStorage.getItem('{DEVICES_KEY}'))")
    assert stored == {"videoinput": second_camera, "audioinput": mic, "audiooutput": speaker}
    await host.by("devices-close").click()
    await expect(dialog).to_have_count(0)
    await expect(host.by("devices-button")).to_be_focused()

    # Muted, the meter of the dialog stays at 0 and listens to nothing.
    await host.by("toggle-mic").click()
    await expect(host.by("toggle-mic")).to_have_attribute("aria-pressed", "false")
    await host.by("devices-button").click()
    await expect(dialog).to_be_visible()
    await meter_stays_silent(host)
    await eventually(host, METERS_CLOSED, True, "a meter listens to the muted microphone")
    await host.page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)

    # The next visit publishes what was chosen in the meeting.
    await host.page.reload()
    await pass_prejoin(host)
    await eventually(host, "() => (" + SENT + ")().video", second_camera, "the meeting's choice was not kept")
    for tab in (host, guest):
        assert not tab.page_errors, tab.page_errors
        assert not tab.csp_reports, tab.csp_reports


# --- 3. sounds: a newcomer, a message in a hidden tab, and the switch that silences them ------


async def test_sounds_for_newcomers_and_hidden_tab_messages_and_the_switch(tabs):
    host = await tabs()
    await create_room(host, "Sounds", "Anna")
    link = await host.by("room-link").input_value()
    assert await host.page.evaluate(TONES) == []

    # Somebody joins: a gentle rising pair.
    boris = await tabs()
    await join_by_link(boris, link, "Boris")
    await expect(host.participants).to_have_count(2)
    await eventually(
        host, f"() => window.__vecheTones.filter((f) => f === {JOIN_NOTE}).length", 1, "no join sound"
    )

    # A message while the page is in view: seen, so no sound.
    tones = await host.page.evaluate(TONES)
    await send_chat(boris, "in view")
    await expect(host.user_messages.last).to_have_text("in view")
    await host.page.wait_for_timeout(300)
    assert await host.page.evaluate(TONES) == tones

    # The same while the tab is hidden: one short note.
    await host.page.evaluate("() => window.__vecheSetHidden(true)")
    await send_chat(boris, "while away")
    await expect(host.user_messages.last).to_have_text("while away")
    await eventually(host, TONES, [*tones, MESSAGE_NOTE], "no sound for a message in a hidden tab")
    await host.page.evaluate("() => window.__vecheSetHidden(false)")

    # One switch, in the Devices dialog, silences everything, and is remembered.
    await host.by("devices-button").click()
    switch = host.by("devices-dialog").get_by_role("switch", name="Sounds")
    await expect(switch).to_have_attribute("aria-checked", "true")
    await switch.click()
    await expect(switch).to_have_attribute("aria-checked", "false")
    assert await host.page.evaluate(f"() => localStorage.getItem('{SOUNDS_KEY}')") == "off"
    await host.by("devices-close").click()
    # The hosts' own settings show the same switch, off as well.
    await host.by("room-settings-button").click()
    await expect(host.by("setting-sound")).to_have_attribute("aria-checked", "false")

    tones = await host.page.evaluate(TONES)
    await host.page.evaluate("() => window.__vecheSetHidden(true)")
    await send_chat(boris, "silent")
    await expect(host.user_messages.last).to_have_text("silent")
    carol = await tabs()
    await join_by_link(carol, link, "Carol")
    await expect(host.participants).to_have_count(3)
    await host.page.wait_for_timeout(300)
    assert await host.page.evaluate(TONES) == tones, "a sound played while sounds are off"
    for tab in (host, boris, carol):
        assert not tab.page_errors, tab.page_errors
