"""e2e tests use the session fixtures `stack` and `gw` of tests/conftest.py; the browser tests
share `browser` and `tabs` here."""

from collections.abc import AsyncIterator, Awaitable, Callable

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


@pytest_asyncio.fixture(loop_scope="session")
async def tabs(browser: object, stack: object) -> AsyncIterator[Callable[..., Awaitable[object]]]:
    """tabs(locale=..., viewport=..., axe=...) opens a fresh context (fresh storage: a new
    person) on the gateway; `axe` lets the test add axe-core to its pages. All closed after the
    test."""
    from tests.e2e.support.browser import Tab, open_tab

    opened: list[Tab] = []

    async def open_(
        locale: str = "en-US", viewport: dict[str, int] | None = None, *, axe: bool = False
    ) -> Tab:
        tab = await open_tab(browser, stack.url, locale, viewport, bypass_csp=axe)  # type: ignore[arg-type, attr-defined]
        opened.append(tab)
        return tab

    yield open_
    for tab in opened:
        await tab.context.close()
