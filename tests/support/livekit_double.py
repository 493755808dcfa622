"""RecordingLiveKitDouble: a small HTTP server that answers LiveKit's RoomService Twirp calls
(`POST /twirp/livekit.RoomService/<Method>`, `application/protobuf`) and records every request
it receives, so tests can see exactly what a real LiveKit server would have been asked.

It is the only test double of the suite, used where a real LiveKit server cannot serve: to
play a LiveKit outage (`stop()`), and to count the exact calls a mute makes. It keeps just
enough state to answer like LiveKit does: rooms, connected participants and their
tracks, `not_found` (HTTP 404) for rooms and identities it does not know, `unauthenticated`
for a request not signed with the API key and secret. `stop()` closes the port and every open
connection (a client sees "connection refused"); `start()` listens on the same port again."""

import time
from dataclasses import dataclass, field

from aiohttp import web
from google.protobuf.message import Message
from livekit import api as lk

from veche.common.settings import LiveKitSettings
from veche.local.stack import free_port

PREFIX = "/twirp/livekit.RoomService/"

# Method -> (request type, the grant LiveKit requires for it, the double's handler).
METHODS: dict[str, tuple[type[Message], str, str]] = {
    "CreateRoom": (lk.CreateRoomRequest, "room_create", "create_room"),
    "DeleteRoom": (lk.DeleteRoomRequest, "room_create", "delete_room"),
    "ListParticipants": (lk.ListParticipantsRequest, "room_admin", "list_participants"),
    "GetParticipant": (lk.RoomParticipantIdentity, "room_admin", "get_participant"),
    "RemoveParticipant": (lk.RoomParticipantIdentity, "room_admin", "remove_participant"),
    "MutePublishedTrack": (lk.MuteRoomTrackRequest, "room_admin", "mute_published_track"),
}


@dataclass
class RecordedCall:
    method: str
    request: Message
    status: int
    grants: lk.VideoGrants | None
    at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def room(self) -> str:
        return getattr(self.request, "room", "") or getattr(self.request, "name", "")


@dataclass
class DoubleRoom:
    room: lk.Room
    participants: dict[str, lk.ParticipantInfo] = field(default_factory=dict)


class TwirpProblem(Exception):
    def __init__(self, status: int, code: str, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


class RecordingLiveKitDouble:
    def __init__(self, api_key: str | None = None, api_secret: str | None = None) -> None:
        settings = LiveKitSettings()
        self.verifier = lk.TokenVerifier(
            api_key or settings.livekit_api_key, api_secret or settings.livekit_api_secret
        )
        self.port = free_port()
        self.calls: list[RecordedCall] = []
        self.rooms: dict[str, DoubleRoom] = {}
        self._runner: web.AppRunner | None = None
        self._sids = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(PREFIX + "{method}", self._serve)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- what the tests look at ------------------------------------------------------------

    def recorded(self, method: str, room: str | None = None, *, ok: bool | None = None) -> list[RecordedCall]:
        return [
            c
            for c in self.calls
            if c.method == method and (room is None or c.room == room) and (ok is None or c.ok == ok)
        ]

    def connect(
        self, room: str, identity: str, kinds: tuple[str, ...] = ("audio", "video")
    ) -> dict[str, str]:
        """A browser joining the LiveKit room and publishing one track per kind (LiveKit
        creates the room on join when nobody did). Returns kind -> track sid."""
        entry = self.rooms.setdefault(room, DoubleRoom(lk.Room(name=room, sid=self._sid("RM"))))
        types = {"audio": lk.TrackType.AUDIO, "video": lk.TrackType.VIDEO}
        tracks = {kind: lk.TrackInfo(sid=self._sid("TR"), type=types[kind]) for kind in kinds}
        entry.participants[identity] = lk.ParticipantInfo(
            sid=self._sid("PA"), identity=identity, tracks=list(tracks.values())
        )
        return {kind: track.sid for kind, track in tracks.items()}

    def track(self, room: str, identity: str, sid: str) -> lk.TrackInfo:
        participant = self.rooms[room].participants[identity]
        return next(t for t in participant.tracks if t.sid == sid)

    # --- the RoomService -------------------------------------------------------------------

    async def _serve(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method not in METHODS:
            return self._problem(TwirpProblem(404, "bad_route", f"no method {method}"))
        request_type, needed_grant, handler = METHODS[method]
        message = request_type.FromString(await request.read())
        grants: lk.VideoGrants | None = None
        try:
            if request.content_type != "application/protobuf":
                raise TwirpProblem(400, "malformed", "expected application/protobuf")
            grants = self._authorize(request, needed_grant, getattr(message, "room", ""))
            answer = getattr(self, f"_{handler}")(message)
        except TwirpProblem as problem:
            self.calls.append(RecordedCall(method, message, problem.status, grants))
            return self._problem(problem)
        self.calls.append(RecordedCall(method, message, 200, grants))
        return web.Response(body=answer.SerializeToString(), content_type="application/protobuf")

    def _authorize(self, request: web.Request, needed_grant: str, room: str) -> lk.VideoGrants:
        header = request.headers.get("Authorization", "")
        try:
            claims = self.verifier.verify(header.removeprefix("Bearer "))
        except Exception as exc:  # noqa: BLE001 - any bad token is unauthenticated
            raise TwirpProblem(401, "unauthenticated", f"invalid token: {exc}") from None
        video = claims.video or lk.VideoGrants()
        if not getattr(video, needed_grant) or (needed_grant == "room_admin" and video.room != room):
            raise TwirpProblem(403, "permission_denied", f"{needed_grant} for {room!r} required")
        return video

    @staticmethod
    def _problem(problem: TwirpProblem) -> web.Response:
        return web.json_response({"code": problem.code, "msg": problem.msg}, status=problem.status)

    def _sid(self, prefix: str) -> str:
        self._sids += 1
        return f"{prefix}_{self._sids:06d}"

    def _room(self, name: str) -> DoubleRoom:
        if name not in self.rooms:
            raise TwirpProblem(404, "not_found", "requested room does not exist")
        return self.rooms[name]

    def _participant(self, room: str, identity: str) -> lk.ParticipantInfo:
        participants = self._room(room).participants
        if identity not in participants:
            raise TwirpProblem(404, "not_found", "participant not found")
        return participants[identity]

    def _create_room(self, req: lk.CreateRoomRequest) -> lk.Room:
        if req.name not in self.rooms:
            self.rooms[req.name] = DoubleRoom(
                lk.Room(
                    name=req.name,
                    sid=self._sid("RM"),
                    max_participants=req.max_participants,
                    empty_timeout=req.empty_timeout,
                    departure_timeout=req.departure_timeout,
                )
            )
        return self.rooms[req.name].room

    def _delete_room(self, req: lk.DeleteRoomRequest) -> lk.DeleteRoomResponse:
        self._room(req.room)
        del self.rooms[req.room]
        return lk.DeleteRoomResponse()

    def _list_participants(self, req: lk.ListParticipantsRequest) -> lk.ListParticipantsResponse:
        return lk.ListParticipantsResponse(participants=list(self._room(req.room).participants.values()))

    def _get_participant(self, req: lk.RoomParticipantIdentity) -> lk.ParticipantInfo:
        return self._participant(req.room, req.identity)

    def _remove_participant(self, req: lk.RoomParticipantIdentity) -> lk.RemoveParticipantResponse:
        self._participant(req.room, req.identity)
        del self.rooms[req.room].participants[req.identity]
        return lk.RemoveParticipantResponse()

    def _mute_published_track(self, req: lk.MuteRoomTrackRequest) -> lk.MuteRoomTrackResponse:
        participant = self._participant(req.room, req.identity)
        track = next((t for t in participant.tracks if t.sid == req.track_sid), None)
        if track is None:
            raise TwirpProblem(404, "not_found", "track not found")
        track.muted = req.muted
        return lk.MuteRoomTrackResponse(track=track)
