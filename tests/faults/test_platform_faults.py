"""Issue #19's fault suite: each platform fault reproduced on processes these tests start
themselves (PostgreSQL, Redis and NATS of their own on free ports, and the services behind the
gateway on them), under a steady load: 3 rooms × 5 members, each with a resuming chat socket
and a post every 0.3 s, plus a join and a leave every second, every answer recorded.

Each scenario asserts its contract (503 problem+json and never a 500/502 or a hang, no member
evicted, no chat message lost, doubled or delivered unannounced, recovery without a manual
restart) and adds a row to the table printed at the end of the module (and in the terminal
summary). The scenarios run in this order so that only one stack is up at a time: the four
dependency faults and the killed replica on a stack with two chat replicas, then the lone chat
process on a stack with one."""

import asyncio
import contextlib
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import nats
import pytest

from tests.conftest import RUN_ID
from tests.faults.support import (
    OK,
    PRESENCE_TIMEOUT_SECONDS,
    REQUEST_TIMEOUT_SECONDS,
    RESULTS,
    SLOWEST_ANSWER,
    Delivery,
    FaultInfra,
    Load,
    Recorder,
    Row,
    build_stack,
    chat_processes,
    log_excerpt,
    supervisor_log,
    table,
    wait_ready,
)
from veche.local.stack import Stack, healthy

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

WARMUP = 2.0  # seconds of load before each fault
OUTAGE = 5.0  # how long PostgreSQL, Redis (frozen) and NATS stay away


@pytest.fixture(scope="module", autouse=True)
def fault_table() -> Iterator[None]:
    yield
    print(table(), flush=True)


@pytest.fixture(scope="module")
def fault_infra() -> Iterator[FaultInfra]:
    fi = FaultInfra(RUN_ID)
    try:
        fi.start()
        yield fi
    finally:
        fi.stop()


class Stacks:
    """One stack at a time, rebuilt when a scenario needs another number of chat replicas."""

    def __init__(self, fi: FaultInfra) -> None:
        self.fi = fi
        self.current: Stack | None = None
        self.chat = 0
        self.supervised, self.say = supervisor_log()

    def get(self, chat: int) -> Stack:
        if self.current is None or self.chat != chat:
            self.close()
            self.current = build_stack(self.fi, chat, self.say)
            self.chat = chat
        return self.current

    def close(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None


@pytest.fixture(scope="module")
def stacks(fault_infra: FaultInfra) -> Iterator[Stacks]:
    holder = Stacks(fault_infra)
    yield holder
    holder.close()


class Scenario:
    """One scenario's stack, load, table row and list of contract violations. Every violation
    is collected, so one run reports all of them; verdict() asserts there are none."""

    def __init__(self, stacks: Stacks, chat: int, name: str, tag: str) -> None:
        self.stacks, self.chat, self.tag = stacks, chat, tag
        self.row = Row(name)
        self.problems: list[str] = []
        self.fi = stacks.fi

    async def __aenter__(self) -> "Scenario":
        RESULTS.append(self.row)
        self.stack = await asyncio.to_thread(self.stacks.get, self.chat)
        # A scenario starts on a platform that recovered from the one before, by itself.
        await wait_ready(self.stack, timeout=60)
        self.load = Load(self.stack, self.tag)
        await self.load.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and self.row.result == "?":
            self.row.result = "ERROR"
            self.row.notes.append(f"{type(exc).__name__}: {str(exc)[:300]}")
        with contextlib.suppress(Exception):
            await self.load.close()
        with contextlib.suppress(Exception):
            await self.load.end_rooms()

    # --- the checks every scenario makes -------------------------------------------------------
    def check_answers(self, answers: list[Any], label: str = "answers") -> None:
        # A refused WebSocket upgrade is a 503 too, but Traefik's own, without the problem+json
        # body (its errors middleware does not handle upgrade requests; a browser's WebSocket
        # sees neither status nor body, only that it must retry): any other status is wrong.
        refused = [a for a in answers if a.kind == "ws-upgrade" and a.status not in OK and a.status != 503]
        if refused:
            self.problems.append(
                f"WebSocket upgrades: {len(refused)} refused with something else than a 503: "
                f"{Recorder.describe(refused, limit=3)}"
            )
        bad = Recorder.unexpected([a for a in answers if a.kind != "ws-upgrade"])
        if bad:
            self.problems.append(
                f"{label}: {len(bad)} neither 2xx nor 503 problem+json: {Recorder.describe(bad)}\n"
                f"logs in {self.stack.run_dir}:\n"
                + log_excerpt(self.stack, r'unhandled error|"status": 50[0-9]', limit=4)
            )
        slow = [a for a in answers if a.latency > SLOWEST_ANSWER]
        if slow:
            self.problems.append(
                f"{label}: {len(slow)} slower than {SLOWEST_ANSWER:.0f} s: {Recorder.describe(slow)}"
            )

    def check_delivery(self, d: Delivery) -> None:
        if d.lost or d.duplicated or d.phantom or d.out_of_order:
            self.problems.append(
                f"chat delivery: lost {d.lost}, duplicated {d.duplicated}, delivered though not "
                f"answered 201 {d.phantom}, readers out of order {d.out_of_order}: {d.detail}"
            )

    async def check_evicted(self) -> list[str]:
        gone = await self.load.evicted()
        if gone:
            rows = await self.fi.sql(
                "SELECT display_name, leave_reason, left_at FROM room_participants"
                " WHERE room_id = ANY($1::uuid[]) AND display_name = ANY($2::text[])",
                [r.id for r in self.load.rooms],
                gone,
            )
            self.problems.append(
                f"{len(gone)} members evicted: "
                + ", ".join(
                    f"{r['display_name']} {r['leave_reason']} at {r['left_at']:%H:%M:%S.%f}" for r in rows
                )
                + "\n"
                + log_excerpt(
                    self.stack,
                    r'/timeout |suspended|seeded|keeps presence|"timeout": [1-9]',
                    ("janitor",),
                    limit=16,
                )
            )
        return gone

    async def check_recovered(self) -> None:
        """Recovery without a manual restart: ready through the gateway, every socket back, and
        a new room works end to end."""
        try:
            await wait_ready(self.stack, timeout=20)
            await self.load.sockets_back(time.monotonic(), timeout=10)
            await self.load.fresh_round_trip()
        except AssertionError as exc:
            self.problems.append(f"not recovered: {exc}")

    def fill(self, delivery: Delivery | None, evicted: list[str] | None) -> None:
        self.row.fill(self.load.recorder.answers, delivery, evicted)

    def verdict(self) -> None:
        self.row.result = "ok" if not self.problems else "FAIL"
        self.row.notes += [p.splitlines()[0][:300] for p in self.problems]
        assert not self.problems, "\n\n".join(self.problems)


def first_ok_after(answers: list[Any], kinds: tuple[str, ...], since: float) -> float | None:
    """Seconds from `since` to the first answer (of these kinds, started after it) that was 2xx."""
    done = [
        a.started + a.latency
        for a in answers
        if a.kind in kinds and a.started >= since and a.status in (200, 201, 204)
    ]
    return min(done) - since if done else None


# --- 1. PostgreSQL --------------------------------------------------------------------------------


async def test_1_postgres_stopped_answers_503_and_loses_nobody(fault_infra, stacks):
    async with Scenario(stacks, 2, "1 PostgreSQL stopped 5 s", "s1") as sc:
        rec = sc.load.recorder
        await asyncio.sleep(WARMUP)
        stopped = time.monotonic()
        await asyncio.to_thread(fault_infra.stop_postgres)
        await asyncio.sleep(max(0.0, stopped + OUTAGE - time.monotonic()))
        await asyncio.to_thread(fault_infra.start_postgres)
        restarted = time.monotonic()
        recovery = await sc.load.probe(restarted, timeout=30)
        sc.row.recovery = f"{recovery:.1f}"
        await asyncio.sleep(PRESENCE_TIMEOUT_SECONDS + 1)  # an eviction would show by now
        await sc.load.stop_load()

        delivery = await sc.load.delivery()
        evicted = await sc.check_evicted()
        sc.fill(delivery, evicted)
        sc.check_answers(rec.answers)
        sc.check_delivery(delivery)
        during = rec.between(stopped, restarted)
        refused = [a for a in during if a.status == 503 and a.kind in ("join", "leave", "probe-join")]
        if not refused:
            sc.problems.append(
                f"no room request was refused while PostgreSQL was down: {Recorder.by_status(during)}"
            )
        sc.row.notes.append(
            f"during the outage {dict(Recorder.by_status(during))}; posts "
            f"{dict(Recorder.by_status([a for a in during if a.kind == 'post']))}; first 2xx join "
            f"{recovery:.1f} s after PostgreSQL listened again"
        )
        await sc.check_recovered()
        sc.verdict()


# --- 2. Redis lost ---------------------------------------------------------------------------------


async def test_2_redis_restarted_empty_evicts_nobody(fault_infra, stacks):
    async with Scenario(stacks, 2, "2 Redis killed, restarted empty", "s2") as sc:
        rec = sc.load.recorder
        await asyncio.sleep(WARMUP)
        before = {
            r.id: [m["id"] for m in await sc.load.history(r) if m["message_type"] == "user"]
            for r in sc.load.rooms
        }
        killed = time.monotonic()
        await asyncio.to_thread(fault_infra.kill_redis)
        accepted_before_kill = set(sc.load.accepted)
        await asyncio.sleep(max(0.0, killed + 3 - time.monotonic()))
        fault_infra.wipe_redis()
        await asyncio.to_thread(fault_infra.start_redis)
        restarted = time.monotonic()
        try:
            back = await sc.load.sockets_back(restarted, timeout=10)
            sc.row.notes.append(f"sockets back {back:.1f} s after Redis listened again")
        except AssertionError as exc:
            sc.problems.append(str(exc))
        # The janitor must seed presence rather than time anyone out: two timeouts of watching.
        await asyncio.sleep(max(0.0, restarted + 2 * PRESENCE_TIMEOUT_SECONDS - time.monotonic()))
        await sc.load.stop_load()

        delivery = await sc.load.delivery()
        evicted = await sc.check_evicted()
        sc.fill(delivery, evicted)
        recovery = first_ok_after(rec.answers, ("post",), restarted)
        sc.row.recovery = f"{recovery:.1f}" if recovery is not None else "never"
        sc.check_answers(rec.answers)
        sc.check_delivery(delivery)
        # Posts work again: every post started 2 s after the first accepted one is accepted.
        if recovery is None:
            sc.problems.append("no post was accepted after Redis came back")
        else:
            late = [a for a in rec.between(restarted + recovery + 2) if a.kind == "post"]
            refused = [a for a in late if a.status != 201]
            if refused:
                sc.problems.append(
                    f"{len(refused)} of {len(late)} posts refused after the recovery: "
                    f"{Recorder.describe(refused)}"
                )
        after: dict[str, set[str]] = {}
        for room in sc.load.rooms:
            try:
                after[room.id] = {m["id"] for m in await sc.load.history(room) if m["message_type"] == "user"}
            except AssertionError as exc:
                after[room.id] = set()
                sc.problems.append(
                    f"room {room.id[:8]}: its host cannot read the history after the restart: {exc}"
                )
        kept = sum(len(set(ids) & after[rid]) for rid, ids in before.items())
        gone = len(accepted_before_kill - set().union(*after.values()))
        sc.row.notes.append(
            f"history: {sum(map(len, before.values()))} user messages {WARMUP:.0f} s into the load, "
            f"{kept} of them left after the restart; {gone} of {len(accepted_before_kill)} posts "
            "accepted before the kill are gone from the history (expected: the Redis was empty)"
        )
        reasons = Counter(k for r in sc.load.readers for k in r.reasons.elements())
        sc.row.notes.append(f"socket losses: {dict(reasons)}")
        await sc.check_recovered()
        sc.verdict()


# --- 3. Redis frozen --------------------------------------------------------------------------------


async def test_3_redis_frozen_answers_503_in_time_and_loses_nothing(fault_infra, stacks):
    async with Scenario(stacks, 2, "3 Redis frozen 5 s (SIGSTOP)", "s3") as sc:
        rec = sc.load.recorder
        await asyncio.sleep(WARMUP)
        frozen = time.monotonic()
        fault_infra.freeze_redis()
        try:
            await asyncio.sleep(OUTAGE)
        finally:
            fault_infra.thaw_redis()
        thawed = time.monotonic()
        try:
            back = await sc.load.sockets_back(thawed, timeout=15)
            sc.row.notes.append(f"sockets back {back:.1f} s after SIGCONT")
        except AssertionError as exc:
            sc.problems.append(str(exc))
        await asyncio.sleep(max(0.0, thawed + PRESENCE_TIMEOUT_SECONDS + 1 - time.monotonic()))
        await sc.load.stop_load()

        delivery = await sc.load.delivery()
        evicted = await sc.check_evicted()
        sc.fill(delivery, evicted)
        recovery = first_ok_after(rec.answers, ("post",), thawed)
        sc.row.recovery = f"{recovery:.1f}" if recovery is not None else "never"
        sc.check_answers(rec.answers)
        sc.check_delivery(delivery)
        late_503 = [a for a in rec.answers if a.status == 503 and a.latency > REQUEST_TIMEOUT_SECONDS + 1]
        if late_503:
            sc.problems.append(
                f"{len(late_503)} answers of 503 came after the request timeout "
                f"({REQUEST_TIMEOUT_SECONDS} s): {Recorder.describe(late_503)}"
            )
        during = rec.between(frozen, thawed)
        drops = Counter(k for r in sc.load.readers for k in r.reasons.elements())
        dropped = sum(1 for r in sc.load.readers for t in r.drops if frozen <= t)
        sc.row.notes.append(
            f"during the freeze {dict(Recorder.by_status(during))}; sockets lost from the freeze on: "
            f"{dropped}, reconnect failures {dict(drops)}"
        )
        await sc.check_recovered()
        sc.verdict()


# --- 4. NATS ------------------------------------------------------------------------------------------


async def _stream_events(url: str, subject: str) -> list[tuple[str | None, dict[str, Any]]]:
    """Every message of the stream on `subject`: (Nats-Msg-Id, payload)."""
    nc = await nats.connect(url, connect_timeout=3, max_reconnect_attempts=1)
    try:
        sub = await nc.jetstream().subscribe(subject, ordered_consumer=True)
        got = []
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=0.5)
                except (TimeoutError, nats.errors.TimeoutError):
                    break
                got.append(((msg.headers or {}).get("Nats-Msg-Id"), json.loads(msg.data)))
        finally:
            await sub.unsubscribe()
        return got
    finally:
        await nc.close()


async def test_4_nats_stopped_publishes_every_event_once(fault_infra, stacks):
    async with Scenario(stacks, 2, "4 NATS stopped 5 s", "s4") as sc:
        rec = sc.load.recorder
        await asyncio.sleep(WARMUP)
        stopped = time.monotonic()
        await asyncio.to_thread(fault_infra.stop_nats)
        await asyncio.sleep(max(0.0, stopped + OUTAGE - time.monotonic()))
        await asyncio.to_thread(fault_infra.start_nats)
        restarted = time.monotonic()
        await asyncio.sleep(3)  # the load goes on across the reconnect
        await sc.load.stop_load()

        room_ids = [r.id for r in sc.load.rooms]
        patterns = [f"{fault_infra.prefix}.{rid}.%" for rid in room_ids]

        async def pending() -> int:
            rows = await fault_infra.sql(
                "SELECT count(*) AS n FROM outbox"
                " WHERE published_at IS NULL AND subject LIKE ANY($1::text[])",
                patterns,
            )
            return int(rows[0]["n"])

        deadline = time.monotonic() + 30
        while True:
            left = await pending()
            if not left or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        drained = time.monotonic()
        sc.row.recovery = f"{drained - restarted:.1f}" if not left else "never"
        if left:
            sc.problems.append(f"{left} outbox events still unpublished 30 s after NATS came back")
        outbox = await fault_infra.sql(
            "SELECT event_id::text AS event_id, subject, payload::text AS payload FROM outbox"
            " WHERE subject LIKE ANY($1::text[]) ORDER BY seq",
            patterns,
        )
        sent_during = [r for r in outbox if json.loads(r["payload"])["type"].startswith("participant.")]
        kinds: Counter[str] = Counter()
        for rid in room_ids:
            expected = [r for r in outbox if r["subject"].startswith(f"{fault_infra.prefix}.{rid}.")]
            deadline = time.monotonic() + 15
            while True:
                stream = await _stream_events(fault_infra.nats_url, f"{fault_infra.prefix}.{rid}.>")
                if len(stream) >= len(expected) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.3)
            ids = [payload["event_id"] for _, payload in stream]
            msg_ids = [msg_id for msg_id, _ in stream]
            doubled = [i for i, n in Counter(ids).items() if n > 1]
            if doubled:
                sc.problems.append(f"room {rid}: {len(doubled)} events in the stream twice: {doubled[:5]}")
            if msg_ids != ids:
                sc.problems.append(f"room {rid}: Nats-Msg-Id differs from event_id on some messages")
            want = Counter(r["event_id"] for r in expected)
            have = Counter(ids)
            if set(want) != set(have):
                sc.problems.append(
                    f"room {rid}: outbox {len(want)} events, stream {len(have)}; missing "
                    f"{sorted(set(want) - set(have))[:5]}, unknown {sorted(set(have) - set(want))[:5]}"
                )
            for r in expected:
                kinds[json.loads(r["payload"])["type"]] += 1
        sc.row.notes.append(
            f"outbox = stream per room: {dict(kinds)}; backlog published {sc.row.recovery} s "
            "after NATS listened again"
        )

        # Every participant event's system line appears once in the room's history.
        names: dict[str, Counter[str]] = {rid: Counter() for rid in room_ids}
        for r in sent_during:
            payload = json.loads(r["payload"])
            rid = payload["room_id"]
            name = payload["participant"]["display_name"]
            line = f"{name} joined" if payload["type"] == "participant.joined" else f"{name} left"
            names[rid][line] += 1
        deadline = time.monotonic() + 20
        while True:
            wrong = {}
            for room in sc.load.rooms:
                history = await sc.load.history(room)
                lines = Counter(m["content"] for m in history if m["message_type"] == "system")
                for line, n in names[room.id].items():
                    if lines[line] != n:
                        wrong[f"{room.id[:8]} {line!r}"] = f"{lines[line]} (want {n})"
            if not wrong or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        if wrong:
            sc.problems.append(f"system messages not exactly once: {dict(list(wrong.items())[:10])}")

        delivery = await sc.load.delivery()
        evicted = await sc.check_evicted()
        sc.fill(delivery, evicted)
        sc.check_answers(rec.answers)
        sc.check_delivery(delivery)
        # NATS is in no request's path: rooms and chat keep answering.
        refused = [a for a in rec.answers if a.status not in (200, 201, 204)]
        if refused:
            sc.problems.append(
                f"{len(refused)} requests failed while only NATS was away: {Recorder.describe(refused)}"
            )
        await sc.check_recovered()
        sc.verdict()


# --- 6. a chat replica of two killed -----------------------------------------------------------


async def test_6_one_of_two_chat_replicas_killed_loses_nothing(fault_infra, stacks):
    async with Scenario(stacks, 2, "6 one of 2 chat replicas SIGKILLed", "s6") as sc:
        rec = sc.load.recorder
        victim = chat_processes(sc.stack)[-1]
        assert victim.popen is not None
        pid_before = victim.popen.pid
        await asyncio.sleep(WARMUP)
        killed = time.monotonic()
        sc.load.kills.append(time.monotonic())
        os.killpg(victim.popen.pid, signal.SIGKILL)  # a crash: the supervisor's business

        deadline = time.monotonic() + 30
        while True:
            popen = victim.popen
            if (
                popen is not None
                and popen.pid != pid_before
                and popen.poll() is None
                and await asyncio.to_thread(healthy, f"http://127.0.0.1:{victim.port}/readyz")
            ):
                break
            if time.monotonic() > deadline:
                sc.problems.append("the supervisor did not bring the killed chat replica back in 30 s")
                break
            await asyncio.sleep(0.2)
        back = time.monotonic() - killed
        sc.row.recovery = f"{back:.1f}"
        await asyncio.sleep(max(0.0, killed + 6 - time.monotonic()))
        await sc.load.stop_load()

        delivery = await sc.load.delivery()
        evicted = await sc.check_evicted()
        sc.fill(delivery, evicted)
        sc.check_answers(rec.answers)
        sc.check_delivery(delivery)
        resumed = [r for r in sc.load.readers if r.drops and r.drops[-1] >= killed]
        if not resumed:
            sc.problems.append("no socket was on the killed replica")
        posts = [a for a in rec.between(killed, killed + 3) if a.kind == "post"]
        sc.row.notes.append(
            f"{len(resumed)} sockets resumed on the other replica; posts in the 3 s after the kill "
            f"{dict(Recorder.by_status(posts))}; replica ready again {back:.1f} s after the kill"
        )
        await sc.check_recovered()
        sc.verdict()


# --- 5. the only chat process --------------------------------------------------------------------


async def test_5_the_only_chat_process_down_evicts_nobody(fault_infra, stacks):
    async with Scenario(stacks, 1, "5 the only chat process killed", "s5") as sc:
        rec = sc.load.recorder
        chat = chat_processes(sc.stack)[0]
        assert chat.popen is not None
        await asyncio.sleep(WARMUP)

        # A crash: the supervisor restarts it within a second or so of the kill, plus its start.
        pid_before = chat.popen.pid
        crashed = time.monotonic()
        sc.load.kills.append(time.monotonic())
        os.killpg(chat.popen.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            popen = chat.popen
            if (
                popen is not None
                and popen.pid != pid_before
                and await asyncio.to_thread(healthy, f"http://127.0.0.1:{chat.port}/readyz")
            ):
                break
            assert time.monotonic() < deadline, "the supervisor did not restart the chat process in 30 s"
            await asyncio.sleep(0.2)
        restarted_by_supervisor = time.monotonic() - crashed
        try:
            await sc.load.sockets_back(crashed, timeout=20)
        except AssertionError as exc:
            sc.problems.append(f"after the supervisor's restart: {exc}")

        # Down for longer than the presence timeout: nobody keeps presence meanwhile.
        before = {r.id: {m["id"] for m in await sc.load.history(r)} for r in sc.load.rooms}
        down = time.monotonic()
        sc.load.kills.append(time.monotonic())
        await asyncio.to_thread(sc.stack.stop_process, chat, signal.SIGKILL)
        await asyncio.sleep(PRESENCE_TIMEOUT_SECONDS + 3)
        sc.stack.start_process(chat)
        up = time.monotonic()
        deadline = up + 30
        while not await asyncio.to_thread(healthy, f"http://127.0.0.1:{chat.port}/readyz"):
            assert time.monotonic() < deadline, "the chat process started again is not ready in 30 s"
            await asyncio.sleep(0.2)
        try:
            back = await sc.load.sockets_back(up, timeout=15)
            sc.row.notes.append(f"sockets back {back:.1f} s after the process was started again")
        except AssertionError as exc:
            sc.problems.append(str(exc))
        # The dangerous moment: a keeper is alive again while members' last signs are old.
        await asyncio.sleep(PRESENCE_TIMEOUT_SECONDS + 1)
        await sc.load.stop_load()

        delivery = await sc.load.delivery()
        evicted = await sc.check_evicted()
        sc.fill(delivery, evicted)
        recovery = first_ok_after(rec.answers, ("post",), up)
        sc.row.recovery = f"{recovery:.1f}" if recovery is not None else "never"
        sc.check_answers(rec.answers)
        sc.check_delivery(delivery)
        outage_chat = [a for a in rec.between(down + 1.5, up) if a.kind == "post"]
        not_503 = [a for a in outage_chat if not (a.status == 503 and a.problem and a.code == "unavailable")]
        if not outage_chat or not_503:
            timeline = Counter(
                (int(a.started - down), "problem+json" if a.problem else a.ctype.split(";")[0])
                for a in rec.between(down - 1, up + 5)
                if a.kind == "post" and a.status == 503
            )
            sc.problems.append(
                f"chat requests while chat was down: {len(outage_chat)}, of which not the gateway's "
                f"503 problem+json: {Recorder.describe(not_503) if not_503 else 0}; 503 posts by "
                f"second from the stop (held down {up - down:.1f} s): {sorted(timeline.items())}"
            )
        statuses = await sc.load.room_statuses()
        if statuses != ["active"] * len(statuses):
            sc.problems.append(f"rooms no longer active: {statuses}")
        for room in sc.load.rooms:
            try:
                now = {m["id"] for m in await sc.load.history(room)}
            except AssertionError as exc:
                sc.problems.append(f"room {room.id[:8]}: its host cannot read the history: {exc}")
                continue
            if not before[room.id] <= now:
                sc.problems.append(
                    f"room {room.id}: {len(before[room.id] - now)} messages gone from the history"
                )
        suspended = log_excerpt(sc.stack, "no chat replica keeps presence", ("janitor",), limit=1)
        if "keeps presence" not in suspended.split("\n", 1)[-1]:
            sc.problems.append("the janitor never said it suspended time-outs while chat was down")
        sc.row.notes.append(
            f"supervisor restarted the killed process, ready {restarted_by_supervisor:.1f} s after the kill; "
            f"then held down {up - down:.1f} s; chat answers meanwhile "
            f"{dict(Counter((a.kind, a.status) for a in outage_chat))}"
        )
        await sc.check_recovered()
        sc.verdict()
