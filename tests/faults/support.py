"""The fault suite's harness: PostgreSQL, Redis and NATS of its own (LocalInfra on free ports, in
a run folder of its own, so stopping, freezing or wiping them touches nobody else), a stack on
them with short presence timings, a steady load through the gateway that records every answer
(status, latency, problem+json or not), and the table of results printed at the end."""

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import websockets
from websockets.exceptions import InvalidStatus

from tests.chat.support import Member, ResumingReader, Room, SteadyPoster, chat_socket
from tests.support import hdr, new_pid
from veche.local.infra import LocalInfra, ensure_database, migrate
from veche.local.stack import Stack, free_port, healthy, port_open

PRESENCE_REFRESH_SECONDS = 1
PRESENCE_TIMEOUT_SECONDS = 5
REQUEST_TIMEOUT_SECONDS = 5
DEPENDENCY_TIMEOUT_SECONDS = 1
# No answer, whatever the fault, may take longer than this.
SLOWEST_ANSWER = 10.0

ROOMS = 3
MEMBERS = 5  # per room, the host included
POST_EVERY = 0.3  # seconds, per member
CHURN_EVERY = 1.0  # a join and a leave in some room this often

OK = (200, 201, 204)


# --- the servers ---------------------------------------------------------------------------------


class FaultInfra:
    """PostgreSQL, Redis and NATS of the suite's own, started as children on free ports, with
    the ways to break them: stop, kill, freeze, wipe."""

    def __init__(self, run_id: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="veche-faults-infra-"))
        self.infra = LocalInfra(self.dir)
        self.database_url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/veche_faults"
        self.redis_url = f"redis://127.0.0.1:{free_port()}/0"
        self.nats_url = f"nats://127.0.0.1:{free_port()}"
        self.stream = f"FAULTS_{run_id}"
        self.prefix = f"f{run_id}rooms"
        # Where LocalInfra.postgres keeps the cluster (as root: under /var/tmp, see infra.py).
        if os.geteuid() == 0:
            digest = hashlib.sha1(str(self.dir.resolve()).encode()).hexdigest()[:10]
            self.pg_data = Path("/var/tmp") / f"veche-pgdata-{digest}"
        else:
            self.pg_data = self.dir / "pgdata"

    def port(self, url: str) -> int:
        return int(url.rsplit(":", 1)[1].split("/", 1)[0])

    def start(self) -> None:
        self.infra.postgres(self.database_url)
        self.infra.redis(self.redis_url)
        self.infra.nats(self.nats_url)
        ensure_database(self.database_url)
        migrate(self.database_url)

    # PostgreSQL ------------------------------------------------------------------------------
    def stop_postgres(self) -> None:
        """A fast shutdown (SIGINT to the postmaster: sessions are cut, the server exits at
        once), not LocalInfra's SIGTERM, which is PostgreSQL's smart shutdown and would wait
        for the services' pooled connections."""
        pid = int((self.pg_data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT)
        popen = self.infra.named["postgres"]
        try:
            popen.wait(20)
        finally:
            self.infra.stop_child("postgres")
        self._wait_closed(self.database_url)

    def start_postgres(self) -> None:
        self.infra.postgres(self.database_url)

    # Redis -----------------------------------------------------------------------------------
    @property
    def redis_pid(self) -> int:
        return self.infra.named["redis"].pid

    def kill_redis(self) -> None:
        os.kill(self.redis_pid, signal.SIGKILL)
        self.infra.named["redis"].wait(10)
        self.infra.stop_child("redis")
        self._wait_closed(self.redis_url)

    def wipe_redis(self) -> None:
        """Its append-only file goes: the next start is an empty Redis at the same URL."""
        shutil.rmtree(self.dir / "redis", ignore_errors=True)

    def start_redis(self) -> None:
        self.infra.redis(self.redis_url)

    def freeze_redis(self) -> None:
        os.kill(self.redis_pid, signal.SIGSTOP)

    def thaw_redis(self) -> None:
        os.kill(self.redis_pid, signal.SIGCONT)

    # NATS ------------------------------------------------------------------------------------
    def stop_nats(self) -> None:
        self.infra.stop_child("nats")
        self._wait_closed(self.nats_url)

    def start_nats(self) -> None:
        self.infra.nats(self.nats_url)

    def _wait_closed(self, url: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while port_open("127.0.0.1", self.port(url)):
            assert time.monotonic() < deadline, f"{url} still listens"
            time.sleep(0.1)

    def stop(self) -> None:
        if "redis" in self.infra.named:
            with contextlib.suppress(ProcessLookupError):
                self.thaw_redis()
        if "postgres" in self.infra.named:
            with contextlib.suppress(Exception):
                self.stop_postgres()
        self.infra.stop()
        shutil.rmtree(self.pg_data, ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.database_url.replace("postgresql+asyncpg", "postgresql"), timeout=5)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()


def build_stack(fi: FaultInfra, chat: int, say: Callable[[str], None]) -> Stack:
    """rooms, `chat` chat replicas, the janitor, web (it serves the gateway's 503 page) and the
    gateway, on the suite's own servers; video off; presence timings short, so that an
    eviction would show within a scenario."""
    env = {
        "DATABASE_URL": fi.database_url,
        "REDIS_URL": fi.redis_url,
        "NATS_URL": fi.nats_url,
        "NATS_STREAM": fi.stream,
        "NATS_SUBJECT_PREFIX": fi.prefix,
        "LIVEKIT_URL": "",
        "LOG_LEVEL": "INFO",
        "PRESENCE_REFRESH_SECONDS": str(PRESENCE_REFRESH_SECONDS),
        "PRESENCE_TIMEOUT_SECONDS": str(PRESENCE_TIMEOUT_SECONDS),
        # The mass-time-out guard stays out of the way: what keeps members in a room through a
        # fault must be presence seeding and the keepers' heartbeat, not this last safety net.
        "PRESENCE_MASS_TIMEOUT_MIN": "1000",
        "JANITOR_SWEEP_INTERVAL_SECONDS": "0.5",
        "JANITOR_CLEANUP_GRACE_SECONDS": "1",
        "JANITOR_ACK_WAIT_SECONDS": "3",
        "REQUEST_TIMEOUT_SECONDS": str(REQUEST_TIMEOUT_SECONDS),
        "DEPENDENCY_TIMEOUT_SECONDS": str(DEPENDENCY_TIMEOUT_SECONDS),
        "GATEWAY_RATE_AVERAGE": "1000",
        "GATEWAY_RATE_BURST": "2000",
    }
    stack = Stack(
        run_dir=Path(tempfile.mkdtemp(prefix=f"veche-faults-stack-chat{chat}-")),
        env=env,
        gateway_port=free_port(),
        ports={n: free_port() for n in ("rooms", "chat", "media-token", "janitor", "web")},
        replicas={"chat": chat},
        replica_ports={"chat": [free_port() for _ in range(chat - 1)]},
        only={"rooms", "chat", "janitor", "web"},
    )
    try:
        stack.start(timeout=90)
        stack.start_supervisor(say=say)
    except Exception:
        stack.stop()
        for log in sorted(stack.run_dir.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text()[-3000:]}")
        raise
    return stack


def chat_processes(stack: Stack) -> list[Any]:
    return [p for p in stack.processes if p.name.rstrip("0123456789") == "chat"]


def log_excerpt(stack: Stack, pattern: str, names: tuple[str, ...] = (), limit: int = 12) -> str:
    """The last `limit` lines matching `pattern` in each process log of the stack."""
    out = []
    for log in sorted(stack.run_dir.glob("*.log")):
        if names and log.stem not in names:
            continue
        lines = [
            ln if len(ln) <= 600 else f"{ln[:300]} … {ln[-250:]}"  # a traceback: its start and its end
            for ln in log.read_text(errors="replace").splitlines()
            if re.search(pattern, ln)
        ]
        if lines:
            out.append(f"--- {log.name} ({len(lines)} matching)\n" + "\n".join(lines[-limit:]))
    return "\n".join(out) or f"(no log line matches {pattern!r})"


async def wait_ready(stack: Stack, timeout: float = 30) -> float:
    """Until rooms, chat and the janitor answer /readyz 200 through the gateway; returns when."""
    urls = [f"{stack.url}/_/{name}/readyz" for name in ("rooms", "chat", "janitor")]
    deadline = time.monotonic() + timeout
    while True:
        states = [await asyncio.to_thread(healthy, url) for url in urls]
        if all(states):
            return time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(f"not ready {timeout:.0f} s later: {dict(zip(urls, states, strict=True))}")
        await asyncio.sleep(0.2)


# --- answers -------------------------------------------------------------------------------------


@dataclass
class Answer:
    kind: str  # create, join, leave, post, probe-join, probe-leave, ws-upgrade, …
    started: float
    latency: float
    status: int | str  # the HTTP status, or "timeout" / "error:<type>" when none came
    problem: bool = False  # content type application/problem+json
    code: str | None = None  # the problem's code
    detail: str = ""
    ctype: str = ""  # its content type, and Retry-After when there was one


class Recorder:
    def __init__(self) -> None:
        self.answers: list[Answer] = []

    def record(self, kind: str, started: float, status: int, headers: Any, body: bytes) -> Answer:
        ctype = str(headers.get("content-type", ""))
        problem = ctype.startswith("application/problem+json")
        code = None
        if status >= 400:
            with contextlib.suppress(ValueError, AttributeError):
                code = json.loads(body).get("code")
        answer = Answer(
            kind,
            started,
            time.monotonic() - started,
            status,
            problem,
            code,
            "" if status < 400 else body[:200].decode(errors="replace"),
            f"{ctype or '-'} retry-after={headers.get('retry-after', '-')}",
        )
        self.answers.append(answer)
        return answer

    async def request(
        self, client: httpx.AsyncClient, kind: str, method: str, url: str, **options: Any
    ) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = await client.request(method, url, **options)
        except httpx.TimeoutException:
            self.answers.append(Answer(kind, started, time.monotonic() - started, "timeout"))
            return None
        except httpx.HTTPError as exc:
            self.answers.append(
                Answer(
                    kind, started, time.monotonic() - started, f"error:{type(exc).__name__}", detail=str(exc)
                )
            )
            return None
        self.record(kind, started, response.status_code, response.headers, response.content)
        return response

    def between(self, start: float, end: float = float("inf")) -> list[Answer]:
        return [a for a in self.answers if start <= a.started < end]

    @staticmethod
    def by_status(answers: list[Answer]) -> Counter[str]:
        return Counter(str(a.status) for a in answers)

    @staticmethod
    def unexpected(answers: list[Answer]) -> list[Answer]:
        """Every answer that is neither a success nor the contract's 503 problem+json."""
        return [a for a in answers if a.status not in OK and not (a.status == 503 and a.problem)]

    @staticmethod
    def describe(answers: list[Answer], limit: int = 8) -> str:
        kinds = Counter((a.kind, a.status, a.code) for a in answers)
        samples = "; ".join(
            f"{a.kind} {a.status} {a.latency:.2f}s [{a.ctype}] {a.detail[:120]!r}" for a in answers[:limit]
        )
        return f"{dict(kinds)}; e.g. {samples}"


# --- the load ------------------------------------------------------------------------------------


class TimedPoster(SteadyPoster):
    """SteadyPoster whose every answer goes to the recorder (status, latency, problem+json)."""

    def __init__(
        self, client: httpx.AsyncClient, room: Room, member: Member, every: float, recorder: Recorder
    ) -> None:
        super().__init__(client, room, member, every)
        self.recorder = recorder
        self.contents: dict[str, str] = {}  # accepted id -> content
        # Posts not answered 201: content -> (sent, answered), for in-doubt outcomes.
        self.unanswered: dict[str, tuple[float, float]] = {}

    async def run(self, stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            started = time.monotonic()
            content = f"{self.member.name} {n}"
            response = await self.recorder.request(
                self.client,
                "post",
                "POST",
                self.room.messages_url,
                json={"content": content},
                headers=hdr(self.member.pid),
            )
            ok = response is not None and response.status_code == 201
            if ok:
                assert response is not None
                message_id = response.json()["id"]
                self.accepted.append(message_id)
                self.contents[message_id] = content
            else:
                self.unanswered[content] = (started, time.monotonic())
            self.attempts.append((started, ok))
            await asyncio.sleep(self.every)


class FaultReader(ResumingReader):
    """ResumingReader that backs off (0.1 s doubling to 1 s) while it cannot connect, records
    when it lost and regained its socket and why it lost it, and keeps each message's content
    (a post resent by someone would show as the same content under a second id)."""

    def __init__(self, base: str, room: Room, member: Member, recorder: Recorder) -> None:
        super().__init__(base, room, member)
        self.recorder = recorder
        self.connected = False
        self.connects: list[float] = []
        self.drops: list[float] = []
        self.reasons: Counter[str] = Counter()
        self.contents: list[str] = []

    async def run(self, stop: asyncio.Event) -> None:
        delay = 0.1
        while not stop.is_set():
            after = self.seen[-1] if self.seen else None
            started = time.monotonic()
            try:
                async with chat_socket(self.base, self.room.id, self.member, after=after) as socket:
                    self.connected = True
                    self.connects.append(time.monotonic())
                    self.live.set()
                    delay = 0.1
                    try:
                        while not stop.is_set():
                            try:
                                frame = await socket.recv(timeout=0.5)
                            except TimeoutError:
                                continue
                            if (
                                frame["type"] == "message.created"
                                and frame["message"]["message_type"] == "user"
                            ):
                                self.seen.append(frame["message"]["id"])
                                self.contents.append(frame["message"]["content"])
                    finally:
                        self.connected = False
                        if not stop.is_set():
                            self.drops.append(time.monotonic())
            except InvalidStatus as exc:
                response = exc.response
                self.recorder.record(
                    "ws-upgrade", started, response.status_code, response.headers, response.body
                )
                self.reasons[f"upgrade {response.status_code}"] += 1
            except websockets.ConnectionClosed as exc:
                self.reasons[f"close {exc.rcvd.code if exc.rcvd else 'none'}"] += 1
            except AssertionError as exc:  # the first frame was no `ready`
                found = re.search(r"'code': '(\w+)'", str(exc))
                self.reasons[f"refused {found.group(1) if found else str(exc)[:60]}"] += 1
            except (websockets.WebSocketException, OSError, TimeoutError) as exc:
                self.reasons[type(exc).__name__] += 1
            if stop.is_set():
                break
            self.resumes += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


class Churn:
    """A join and a leave in one of the rooms every CHURN_EVERY seconds (a leave that failed is
    retried first; a room with one pending gets no new join, so none fills up)."""

    def __init__(self, client: httpx.AsyncClient, rooms: list[Room], recorder: Recorder, tag: str) -> None:
        self.client, self.rooms, self.recorder, self.tag = client, rooms, recorder, tag
        self.joined: list[tuple[Room, Member]] = []
        self.pending: list[tuple[Room, Member]] = []

    async def run(self, stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set():
            tick = time.monotonic()
            for room, member in list(self.pending):
                if await self.leave(room, member):
                    self.pending.remove((room, member))
            room = self.rooms[n % len(self.rooms)]
            n += 1
            if not any(r is room for r, _ in self.pending):
                member = await self.join(room, f"{self.tag}c{n}", "join")
                if member is not None and not await self.leave(room, member):
                    self.pending.append((room, member))
            await asyncio.sleep(max(0.0, CHURN_EVERY - (time.monotonic() - tick)))

    async def join(self, room: Room, name: str, kind: str) -> Member | None:
        pid = new_pid()
        response = await self.recorder.request(
            self.client,
            kind,
            "POST",
            f"/api/v1/rooms/{room.id}/join",
            json={"display_name": name},
            headers=hdr(pid),
        )
        if response is None or response.status_code not in (200, 201):
            return None
        member = Member(pid, response.json()["id"], name)
        self.joined.append((room, member))
        return member

    async def leave(self, room: Room, member: Member, kind: str = "leave") -> bool:
        response = await self.recorder.request(
            self.client, kind, "POST", f"/api/v1/rooms/{room.id}/leave", headers=hdr(member.pid)
        )
        return response is not None and response.status_code == 204


@dataclass
class Delivery:
    lost: int  # accepted posts some reader never got
    duplicated: int  # extra deliveries: an id twice, or one content under two ids
    phantom: int  # delivered, though the post was not answered 201
    out_of_order: int
    detail: str


class Load:
    """ROOMS rooms of MEMBERS members through the gateway: every member reads with a resuming
    socket and posts every POST_EVERY s; a join and a leave every CHURN_EVERY s."""

    def __init__(self, stack: Stack, tag: str) -> None:
        self.stack, self.tag = stack, tag
        self.recorder = Recorder()
        self.client = httpx.AsyncClient(
            base_url=stack.url,
            timeout=15,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=50),
        )
        self.rooms: list[Room] = []
        self.tracked: dict[str, list[Member]] = {}
        self.readers: list[FaultReader] = []
        self.posters: list[TimedPoster] = []
        # When a scenario SIGKILLed a process serving posts: a post in flight at that moment is
        # in doubt (stored, or not, before the process died; the client only saw it fail).
        self.kills: list[float] = []
        self.churn = Churn(self.client, self.rooms, self.recorder, tag)
        self._stop_reading, self._stop_posting = asyncio.Event(), asyncio.Event()
        self._reading: list[asyncio.Task[None]] = []
        self._posting: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for r in range(ROOMS):
            room = await Room.create(self.client, host_name=f"{self.tag}r{r}h")
            for i in range(1, MEMBERS):
                await room.join(f"{self.tag}r{r}m{i}", settle=False)
            self.rooms.append(room)
            self.tracked[room.id] = list(room.members)
        self.readers = [
            FaultReader(self.stack.url, room, member, self.recorder)
            for room in self.rooms
            for member in room.members
        ]
        self._reading = await ResumingReader.start(self.readers, self._stop_reading)  # type: ignore[arg-type]
        self.posters = [
            TimedPoster(self.client, room, member, POST_EVERY, self.recorder)
            for room in self.rooms
            for member in room.members
        ]
        self.started = time.monotonic()
        self._posting = [asyncio.create_task(p.run(self._stop_posting)) for p in self.posters]
        self._posting.append(asyncio.create_task(self.churn.run(self._stop_posting)))

    async def stop_load(self) -> None:
        self._stop_posting.set()
        async with asyncio.timeout(30):
            await asyncio.gather(*self._posting)
        for room, member in list(self.churn.pending):  # best effort, outside the record
            with contextlib.suppress(httpx.HTTPError):
                await self.client.post(f"/api/v1/rooms/{room.id}/leave", headers=hdr(member.pid))

    async def close(self) -> None:
        self._stop_posting.set()
        self._stop_reading.set()
        for task in self._posting + self._reading:
            if not task.done():
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(task, 10)
        await self.client.aclose()

    # --- measures -----------------------------------------------------------------------------
    @property
    def accepted(self) -> dict[str, str]:
        return {i: c for p in self.posters for i, c in p.contents.items()}

    async def delivery(self, timeout: float = 10) -> Delivery:
        """Waits (bounded) until every reader has every accepted post of its room, then counts."""
        by_room = {
            room.id: {i for p in self.posters if p.room is room for i in p.accepted} for room in self.rooms
        }
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(by_room[r.room.id] <= set(r.seen) for r in self.readers):
                break
            await asyncio.sleep(0.2)
        lost_ids: set[str] = set()
        phantom_ids: set[str] = set()
        duplicated = out_of_order = 0
        notes = []
        in_flight_at_kill = {
            content
            for p in self.posters
            for content, (sent, answered) in p.unanswered.items()
            if any(sent <= kill <= answered for kill in self.kills)
        }
        for reader in self.readers:
            want = by_room[reader.room.id]
            missing = want - set(reader.seen)
            content_of = dict(zip(reader.seen, reader.contents, strict=False))
            in_doubt = {i for i in set(reader.seen) - want if content_of.get(i) in in_flight_at_kill}
            if in_doubt:
                notes.append(f"{reader.member.name}: {len(in_doubt)} in flight when a process was killed")
            extra = set(reader.seen) - want - in_doubt
            lost_ids |= missing
            phantom_ids |= extra
            duplicated += len(reader.seen) - len(set(reader.seen))
            duplicated += (
                len(reader.contents) - len(set(reader.contents)) - (len(reader.seen) - len(set(reader.seen)))
            )
            out_of_order += reader.seen != sorted(reader.seen)
            if missing or extra:
                notes.append(
                    f"{reader.member.name}: missing {len(missing)}, not accepted {len(extra)} "
                    f"(resumes {reader.resumes}, {dict(reader.reasons)})"
                )
        return Delivery(len(lost_ids), duplicated, len(phantom_ids), out_of_order, "; ".join(notes[:6]))

    async def evicted(self, timeout: float = 20) -> list[str]:
        """Tracked members no longer active. Asked without X-Participant-ID: the question must
        not itself count as anybody's sign of life."""
        deadline = time.monotonic() + timeout
        gone: list[str] = []
        for room in self.rooms:
            while True:
                response = await self.client.get(f"/api/v1/rooms/{room.id}/participants")
                if response.status_code == 200:
                    break
                assert time.monotonic() < deadline, f"participants: {response.status_code} {response.text}"
                await asyncio.sleep(0.3)
            active = {p["id"] for p in response.json()["participants"]}
            gone += [m.name for m in self.tracked[room.id] if m.public_id not in active]
        return gone

    async def room_statuses(self) -> list[str]:
        out = []
        for room in self.rooms:
            response = await self.client.get(f"/api/v1/rooms/{room.id}")
            out.append(
                response.json()["status"] if response.status_code == 200 else str(response.status_code)
            )
        return out

    async def history(self, room: Room, timeout: float = 15) -> list[dict[str, Any]]:
        """The room's whole history, oldest first, asked as its host (a 503 while the platform
        settles is waited out; any other refusal fails)."""

        async def page(**params: Any) -> list[dict[str, Any]]:
            deadline = time.monotonic() + timeout
            while True:
                response = await self.client.get(room.messages_url, params=params, headers=hdr(room.host.pid))
                if response.status_code != 503 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.3)
            assert response.status_code == 200, response.text
            return response.json()["messages"]  # type: ignore[no-any-return]

        messages = await page(limit=200)
        while messages:
            older = await page(limit=200, before=messages[0]["id"])
            if not older:
                break
            messages = older + messages
        return messages

    async def probe(self, since: float, timeout: float = 30, every: float = 0.2) -> float:
        """A join (then its leave) in the first room every `every` s until one is answered 2xx;
        the seconds from `since` to that answer."""
        deadline = time.monotonic() + timeout
        n = 0
        while True:
            n += 1
            member = await self.churn.join(self.rooms[0], f"{self.tag}p{n}", "probe-join")
            if member is not None:
                done = time.monotonic()
                for _ in range(50):
                    if await self.churn.leave(self.rooms[0], member, "probe-leave"):
                        break
                    await asyncio.sleep(every)
                return done - since
            assert time.monotonic() < deadline, f"no join answered 2xx {timeout:.0f} s after the fault"
            await asyncio.sleep(every)

    async def sockets_back(self, since: float, timeout: float = 20) -> float:
        """Until every reader holds a socket again; the seconds from `since`."""
        deadline = time.monotonic() + timeout
        while not all(r.connected for r in self.readers):
            if time.monotonic() > deadline:
                down = [f"{r.member.name} {dict(r.reasons)}" for r in self.readers if not r.connected]
                raise AssertionError(f"sockets not back {timeout:.0f} s later: {down}")
            await asyncio.sleep(0.1)
        return max([since] + [c for r in self.readers for c in r.connects]) - since

    async def fresh_round_trip(self) -> None:
        """A new room, a join, a post read back by a socket: the platform serves again."""
        room = await Room.create(self.client, host_name=f"{self.tag}fresh")
        guest = await room.join(f"{self.tag}guest", settle=False)
        async with chat_socket(self.stack.url, room.id, room.host) as socket:
            posted = await room.post(guest, "after the fault")
            assert (await socket.created("after the fault"))["id"] == posted["id"]
        await room.end()

    async def end_rooms(self) -> None:
        """Ends the scenario's rooms, so that their members are not the next one's candidates."""
        for room in self.rooms:
            with contextlib.suppress(httpx.HTTPError):
                await self.client.post(f"/api/v1/rooms/{room.id}/end", headers=hdr(room.host.pid))


# --- the table -----------------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    statuses: str = ""
    max_latency: str = ""
    lost: str = ""
    duplicated: str = ""
    phantom: str = ""
    evicted: str = ""
    recovery: str = ""
    result: str = "?"
    notes: list[str] = field(default_factory=list)

    def fill(self, answers: list[Answer], delivery: Delivery | None, evicted: list[str] | None) -> None:
        counts = Recorder.by_status([a for a in answers if a.kind != "ws-upgrade"])
        upgrades = Recorder.by_status([a for a in answers if a.kind == "ws-upgrade"])
        self.statuses = " ".join(
            [f"{s}:{n}" for s, n in sorted(counts.items())]
            + [f"ws{s}:{n}" for s, n in sorted(upgrades.items())]
        )
        self.max_latency = f"{max((a.latency for a in answers), default=0):.2f}s"
        if delivery is not None:
            self.lost, self.duplicated, self.phantom = (
                str(delivery.lost),
                str(delivery.duplicated),
                str(delivery.phantom),
            )
        if evicted is not None:
            self.evicted = str(len(evicted))


RESULTS: list[Row] = []
COLUMNS = (
    ("scenario", "scenario"),
    ("requests by status", "statuses"),
    ("max latency", "max_latency"),
    ("lost", "lost"),
    ("dup", "duplicated"),
    ("phantom", "phantom"),
    ("evicted", "evicted"),
    ("recovery s", "recovery"),
    ("result", "result"),
)


def table() -> str:
    if not RESULTS:
        return ""
    rows = [[title for title, _ in COLUMNS]] + [
        [str(getattr(r, attr)) for _, attr in COLUMNS] for r in RESULTS
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    notes = [f"  {r.scenario.split()[0]}: {n}" for r in RESULTS for n in r.notes]
    legend = (
        "requests: HTTP answers by status (wsNNN: refused WebSocket upgrades); "
        "lost: accepted posts some socket never got; dup: extra deliveries (an id twice, or a post "
        "stored twice); phantom: delivered though not answered 201; evicted: tracked members no "
        "longer active"
    )
    return "\n".join(["", "fault suite", *lines, legend, *notes, ""])


def supervisor_log() -> tuple[list[str], Callable[[str], None]]:
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(f"{time.monotonic():.1f} {line}")
        print(f"[faults stack] {line}", flush=True)

    return lines, say


def pg_process_running(fi: FaultInfra) -> bool:
    popen: subprocess.Popen[bytes] | None = fi.infra.named.get("postgres")
    return popen is not None and popen.poll() is None
