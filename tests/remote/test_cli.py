"""`pml ask` on a remote build as a user runs it: an unreachable endpoint and a bad key
are one line and exit 2, and leave no turn behind."""

from cli_run import assert_one_line_error, pml
from remote_stub import Stub
from serve_client import free_port


def test_an_unreachable_endpoint_and_a_bad_key_are_one_line(pml_home, tmp_path, monkeypatch):
    build = tmp_path / "remote.yml"
    url = f"http://127.0.0.1:{free_port()}/v1"
    build.write_text(f"from: {{endpoint: {url}, model: big}}\nmemory: {{enabled: false}}\n")
    result = pml("ask", "--session", "s1", str(build), "Hi", home=pml_home)
    assert_one_line_error(result, f"error: cannot reach the remote at {url} (connection refused)")

    monkeypatch.setenv("PML_TEST_KEY", "wrong")
    with Stub([("status", 401, {"error": {"message": "invalid api key"}}, {})]) as stub:
        build.write_text(f"from: {{endpoint: {stub.url}, model: big, api_key_env: PML_TEST_KEY}}\n"
                         "memory: {enabled: false}\n")
        result = pml("ask", "--session", "s1", str(build), "Hi", home=pml_home)
    assert_one_line_error(result, f"error: the remote at {stub.url} refused the key (401: invalid api key); "
                                  "check PML_TEST_KEY")
    assert len(stub.requests) == 1  # a bad key is not retried
    from pimpmyllama.memory.sessions import SessionStore
    from pimpmyllama.storage.db import open_database

    store = SessionStore(open_database())
    session = store.find("s1")  # made once the engine answered its first question (/props), empty since
    assert session is not None and store.turns(session) == []
