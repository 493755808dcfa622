"""Settings: no deployment starts with the repository's development secrets."""

import pytest
from pydantic import ValidationError

from veche.rooms.settings import RoomsSettings


def test_no_service_starts_with_the_development_secrets_outside_dev_mode():
    strong = {"livekit_api_secret": "s" * 40, "internal_api_token": "t" * 40}
    for weak in (
        {},
        {"internal_api_token": "t" * 40},
        {"livekit_api_secret": "s" * 40},
        {**strong, "livekit_api_secret": "short"},
        {**strong, "internal_api_token": "change-me-to-a-token-of-32-or-more-chars"},
    ):
        with pytest.raises(ValidationError, match="refusing to start"):
            RoomsSettings(dev_mode=False, **weak)
    assert RoomsSettings(dev_mode=False, **strong).livekit_api_secret == "s" * 40
    assert RoomsSettings(dev_mode=True).dev_mode


def test_services_without_livekit_need_no_livekit_secret():
    from veche.chat.settings import ChatSettings
    from veche.janitor.settings import JanitorSettings
    from veche.media_token.settings import MediaSettings

    token = {"internal_api_token": "t" * 40}
    assert ChatSettings(dev_mode=False, **token).internal_api_token == "t" * 40
    assert JanitorSettings(dev_mode=False, **token).internal_api_token == "t" * 40
    for holder in (RoomsSettings, MediaSettings):  # these hold the key pair: it must be real
        with pytest.raises(ValidationError, match="LIVEKIT_API_SECRET"):
            holder(dev_mode=False, **token)


def test_a_full_or_read_only_redis_is_a_dependency_outage_not_a_bug():
    import redis.exceptions

    from veche.common.errors import is_dependency_error

    assert is_dependency_error(redis.exceptions.OutOfMemoryError("OOM command not allowed"))
    assert is_dependency_error(redis.exceptions.ReadOnlyError("READONLY"))
    assert not is_dependency_error(redis.exceptions.ResponseError("WRONGTYPE"))
