"""The browser tests' pages: a fresh Chromium context per test that records every request,
dialog, script error and CSP complaint, and the checks made when the test ends (nothing
left the server, no markup became an element, nothing fired)."""

from urllib.parse import urlsplit

WAIT = 15_000  # ms
XSS = "<img src=x onerror=alert(1)>"  # a logged string that must stay text on every page


def open_page(browser, base, scheme="light"):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    page.set_default_timeout(WAIT)
    page.requests, page.dialogs, page.problems = [], [], []
    context.on("request", lambda request: page.requests.append(request.url))
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    page.on("console", lambda m: page.problems.append(m.text) if "Content Security Policy" in m.text else None)
    return context, page


def check_page(context, page, base):
    server = urlsplit(base).netloc
    foreign = [
        u
        for u in page.requests
        if urlsplit(u).scheme in ("http", "https", "ws", "wss") and urlsplit(u).netloc != server
    ]
    # An <img src=x> that became HTML would ask the server for /x or /run/x.
    stray = [u for u in page.requests if urlsplit(u).path.rstrip("/").endswith("/x")]
    context.close()
    assert foreign == [], f"requests left the server: {foreign}"
    assert stray == [], f"markup became an element: {stray}"
    assert page.dialogs == [], f"a dialog fired: {page.dialogs}"
    assert page.problems == [], page.problems
