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
