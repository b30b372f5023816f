"""Browser tests: the admin pages in headless Chromium, driven by Playwright, at desktop and phone width."""
