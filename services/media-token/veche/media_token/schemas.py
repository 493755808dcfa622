"""Request and response shapes of the media API (docs/api.md: Media)."""

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from veche.common.timefmt import Timestamp

TrackKind = Literal["audio", "video"]


class MediaToken(BaseModel):
    """What a browser needs to connect to LiveKit. `identity` is the public participant id."""

    token: str
    url: str
    room: str
    identity: UUID
    expires_at: Timestamp


class MuteTrack(BaseModel):
    model_config = ConfigDict(extra="ignore")

    kind: TrackKind
