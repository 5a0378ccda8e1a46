"""Browser tests: the portals driven in Debian's headless Chromium through Playwright."""
