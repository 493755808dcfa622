"""e2e tests use the session fixtures `stack` and `gw` of tests/conftest.py; the browser tests
share `browser` here."""

from collections.abc import AsyncIterator

import pytest_asyncio


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser() -> AsyncIterator[object]:
    """One headless Chromium (Debian's) per module; every test opens its own contexts in it."""
    from playwright.async_api import async_playwright

    from tests.e2e.support.browser import launch

    async with async_playwright() as playwright:
        chromium = await launch(playwright)
        try:
            yield chromium
        finally:
            await chromium.close()
