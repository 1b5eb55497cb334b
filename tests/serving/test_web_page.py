"""The web page at / in a real browser: Playwright driving the system's Chromium
against a real `pml serve` process on a tiny random model.

The browser must be there: without /usr/bin/chromium (Debian's `chromium`, which
.ci/run installs) or the `playwright` package these tests fail, they never skip."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from serve_client import free_port, wait_until_healthy

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
HOURS = "The post office opens at nine and closes at noon on Saturdays.\n"


def long_talking_tiny(folder: Path) -> Path:
    """The tiny model with a 4096 window that never says its special tokens (their
    embedding rows, tied to the output head, are zero, so greedy decoding never picks
    them): its replies run to max_tokens, long enough to be stopped."""
    from safetensors.torch import load_file, save_file
    from tiny import make_tiny_model
    from tokenizers import Tokenizer

    make_tiny_model(folder, max_position_embeddings=4096)
    specials = list(Tokenizer.from_file(str(folder / "tokenizer.json")).get_added_tokens_decoder())
    for path in folder.glob("*.safetensors"):
        tensors = load_file(path)
        tensors["model.embed_tokens.weight"][specials] = 0
        save_file(tensors, path, metadata={"format": "pt"})
    return folder




@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`pml serve` on a free port, PML_HOME a fresh folder holding the model `tiny` and a build `web`."""
    from pimpmyllama.models.store import ModelStore
    from pimpmyllama.prompting.build import Build
    from pimpmyllama.prompting.builds import BuildStore

    home = tmp_path_factory.mktemp("pml-web")
    ModelStore(home / "models").import_model(long_talking_tiny(tmp_path_factory.mktemp("tiny-web")), "tiny")
    BuildStore(home / "builds").save("web", Build.model_validate(
        {"from": "tiny", "system": "You answer questions about the town.",
         "parameters": {"temperature": 0, "num_ctx": 4096, "max_new_tokens": 3000}}))
    port = free_port()
    env = {**os.environ, "PML_HOME": str(home),
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    log = (home / "server.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "pimpmyllama", "serve", "--port", str(port)], env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, log=home / "server.log")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the web page tests need Debian's chromium "
                    "(apt-get install -y chromium; .ci/run installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: pip install -e '.[test]'")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(server)
    page.wait_for_function("document.querySelector('#model').value === 'web'")
    page.wait_for_function("document.querySelector('#system').value !== ''")
    page.wait_for_function("!document.querySelector('#prompt').disabled")
    yield page
    page.close()


def send(page, text: str, max_tokens: str = "") -> None:
    page.fill("#max-tokens", max_tokens)
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")


def last_reply(page):
    return page.locator(".message.assistant").last


def wait_done(page, state: str, timeout=60_000) -> None:
    """Waits for the last reply to end, then checks how it ended (a failure shows the page's error)."""
    last = "[...document.querySelectorAll('.message.assistant')].pop()"
    page.wait_for_function(f"(() => {{ const r = {last}; return r && r.dataset.done; }})()", timeout=timeout)
    assert page.evaluate(f"{last}.dataset.done") == state, page.inner_text("#error")


def api_get(page, path: str):
    return page.evaluate(f"fetch({json.dumps(path)}).then(r => r.json())")


def test_chat_streams_stops_cites_and_resumes(page, tmp_path):
    # The reply is watched as the page writes it: it must grow over several updates.
    page.evaluate("""() => {
        window.replyLengths = [];
        new MutationObserver(() => {
            const body = [...document.querySelectorAll('.message.assistant .body')].pop();
            if (body) window.replyLengths.push(body.textContent.length);
        }).observe(document.querySelector('#messages'), {subtree: true, childList: true, characterData: true});
    }""")
    send(page, "Hello, who are you?", max_tokens="200")
    wait_done(page, "complete")
    lengths = [n for n in page.evaluate("window.replyLengths") if n > 0]
    assert len(set(lengths)) >= 2 and lengths == sorted(lengths), lengths
    assert page.locator(".message.user .body").first.inner_text() == "Hello, who are you?"
    session = page.locator("#sessions li.active").get_attribute("data-session")
    assert session.startswith("web-")

    # Stop: the reply ends where it was, the server stores the turn as interrupted.
    # The click comes from the page as soon as the reply shows text: a click from here,
    # after polling, could come too late on a loaded machine (the whole reply takes ~25 s).
    page.evaluate("""() => new MutationObserver((_, observer) => {
        const replies = document.querySelectorAll('.message.assistant .body');
        if (replies.length === 2 && replies[1].textContent.length > 0) {
            observer.disconnect();
            document.querySelector('#stop').click();
        }
    }).observe(document.querySelector('#messages'), {subtree: true, childList: true, characterData: true})""")
    send(page, "Tell me everything.")
    wait_done(page, "stopped", timeout=10_000)
    assert last_reply(page).locator(".note").inner_text() == "stopped"
    assert page.locator("#send").is_visible() and not page.locator("#stop").is_visible()
    for _ in range(50):
        turns = api_get(page, f"/pml/sessions/{session}")["turns"]
        if len(turns) == 2:
            break
        time.sleep(0.2)
    assert [t["status"] for t in turns] == ["complete", "interrupted"]
    assert len(turns[1]["reply"]) < 3000

    # Upload a document; the next reply cites it.
    doc = tmp_path / "hours.md"
    doc.write_text(f"# Hours\n\n{HOURS}")
    page.fill("#kb-name", "town")
    page.set_input_files("#upload-file", str(doc))
    page.click("#upload")
    page.wait_for_function("document.querySelector('#upload-status').textContent.includes('chunk')")
    assert page.inner_text("#upload-status") == "hours.md: added, 1 chunk in town"
    assert page.locator("#kb-list input[value=town]").is_checked()
    send(page, "When does the post office open?", max_tokens="20")
    wait_done(page, "complete")
    source = last_reply(page).locator(".sources summary")
    assert source.count() == 1
    assert source.inner_text().startswith("[1] hours.md · chunk 0 · ")
    context = page.inner_text("#context")
    assert "knowledge" in context and "budget = num_ctx 4096 − max_new_tokens 20" in context
    page.screenshot(path=str(tmp_path / "web-page.png"))
    if os.environ.get("PML_WEB_SCREENSHOT"):  # refreshes the docs' picture
        page.screenshot(path=os.environ["PML_WEB_SCREENSHOT"])

    # A new chat, then back to this session from the list: its turns come back.
    page.click("#new-chat")
    assert page.locator(".message").count() == 0
    page.click(f"#sessions li[data-session='{session}']")
    page.wait_for_function("document.querySelectorAll('.message.user').length === 3")
    assert page.locator(".message.user .body").all_inner_texts() == [
        "Hello, who are you?", "Tell me everything.", "When does the post office open?"]


def test_nothing_can_be_sent_before_the_page_has_its_session(browser, server):
    # The knowledge bases answer late (as on a loaded machine): until the page has them, and
    # a session, the composer is disabled; a message typed then would lose its reply to newChat.
    page = browser.new_page()
    held = []
    page.route("**/pml/knowledge", lambda route: held.append(route))  # answered when the test lets it go
    try:
        page.goto(server)
        page.wait_for_function("document.querySelector('#model').value === 'web'")
        while not held:
            page.wait_for_timeout(50)
        assert page.locator("#prompt").is_disabled() and page.locator("#send").is_disabled()
        held[0].continue_()
        send(page, "Hello?", max_tokens="5")  # Playwright's fill waits until the prompt is enabled
        wait_done(page, "complete")
        assert page.locator(".message.user .body").all_inner_texts() == ["Hello?"]
        session = page.evaluate("state.session")
        assert session.startswith("web-")
        for _ in range(50):
            if api_get(page, f"/pml/sessions/{session}")["turns"]:
                break
            time.sleep(0.2)
        assert [t["user"] for t in api_get(page, f"/pml/sessions/{session}")["turns"]] == ["Hello?"]
    finally:
        page.close()


def test_the_markdown_renderer_escapes_first(page):
    def render(text: str) -> str:
        return page.evaluate("(t) => renderMarkdown(t)", text)

    assert render("<script>alert(1)</script> & **bold**") == (
        "<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; <strong>bold</strong></p>")
    assert render("a *b* _c_ `<i>x</i>`\nnext") == "<p>a <em>b</em> <em>c</em> <code>&lt;i&gt;x&lt;/i&gt;</code><br>next</p>"
    assert render("- one\n- **two**\n\n1. first\n2. second") == (
        "<ul><li>one</li><li><strong>two</strong></li></ul>\n<ol><li>first</li><li>second</li></ol>")
    assert render("```python\nif a < b:\n    **x**\n```") == (
        '<pre><code class="language-python">if a &lt; b:\n    **x**</code></pre>')
    assert render("[site](https://example.org/?a=1&b=2) [bad](javascript:alert(1))") == (
        '<p><a href="https://example.org/?a=1&amp;b=2" target="_blank" rel="noopener noreferrer">site</a> '
        "[bad](javascript:alert(1))</p>")
    assert render('[x](https://a.org/"onmouseover="alert(1))') == (
        '<p><a href="https://a.org/&quot;onmouseover=&quot;alert(1" target="_blank" rel="noopener noreferrer">x</a>)</p>')
    assert render("## Title\ntext") == "<h4>Title</h4>\n<p>text</p>"


def test_the_page_files_are_served_and_others_are_not(server):
    with urllib.request.urlopen(server) as response:
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        html = response.read().decode()
    assert '<script src="/web/app.js"></script>' in html and "http" not in html.replace('http-equiv', '')
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{server}/web/secret.py")
    assert missing.value.code == 404
