"""The demo driven end to end in headless Chromium (Debian's package, through Playwright)."""
