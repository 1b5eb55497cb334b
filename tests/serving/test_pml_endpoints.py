"""/pml/...: sessions, knowledge bases and uploads, a model's settings — rows in the
stores after each call, and uploads that fail leaving everything as it was."""

from fastapi.testclient import TestClient
from serve_client import chat

from pimpmyllama.knowledge.bases import knowledge_store
from pimpmyllama.paths import uploads_dir
from pimpmyllama.prompting.build import Build
from pimpmyllama.prompting.builds import BuildStore
from pimpmyllama.storage.db import open_database

HOURS = b"# Hours\n\nThe post office opens at nine.\n"


def upload(client, name="hours.md", data=HOURS, base="town"):
    return client.post(f"/pml/knowledge/{base}/documents", files={"file": (name, data, "text/markdown")})


def chunk_texts(base="town"):
    return [r["text"] for r in open_database().query(
        "SELECT c.text FROM chunks c JOIN knowledge_bases k ON k.id = c.kb_id WHERE k.name = ? ORDER BY c.id",
        (base,))]


def test_sessions_and_their_turns(client, fake_engine):
    fake_engine.replies.extend(["a1", "a2", "b1"])
    chat(client, "q1", pml={"session": "alpha"})
    chat(client, "q2", pml={"session": "alpha"})
    chat(client, "q3", pml={"session": "beta"})
    listed = client.get("/pml/sessions").json()["data"]
    assert sorted((s["name"], s["build"], s["turns"]) for s in listed) == [("alpha", "tiny", 2), ("beta", "tiny", 1)]
    alpha = client.get("/pml/sessions/alpha").json()
    assert (alpha["name"], alpha["build"], alpha["system"]) == ("alpha", "tiny", None)
    assert [(t["index"], t["user"], t["reply"], t["status"]) for t in alpha["turns"]] == [
        (0, "q1", "a1", "complete"), (1, "q2", "a2", "complete")]
    missing = client.get("/pml/sessions/gamma")
    assert missing.status_code == 404
    assert "unknown session 'gamma'" in missing.json()["error"]["message"]


def test_an_upload_creates_the_base_and_stores_the_chunks(client):
    response = upload(client)
    assert response.status_code == 200
    stored = uploads_dir() / "town" / "hours.md"
    assert response.json() == {"knowledge_base": "town", "document": "hours.md", "source": str(stored.resolve()),
                               "status": "added", "chunks": 1}
    assert stored.read_bytes() == HOURS
    assert chunk_texts() == ["The post office opens at nine."]
    [base] = client.get("/pml/knowledge").json()["data"]
    assert (base["name"], base["documents"], base["chunks"]) == ("town", 1, 1)
    assert upload(client).json()["status"] == "unchanged"
    again = upload(client, data=b"The library opens at ten.\n")
    assert (again.json()["status"], chunk_texts()) == ("updated", ["The library opens at ten."])


def test_an_uploaded_document_is_cited_by_the_next_reply(client, fake_engine):
    upload(client)
    body = chat(client, "When does the post office open?", pml={"knowledge": ["town"]}).json()
    assert [(s["number"], s["document"], s["chunk"]) for s in body["pml"]["sources"]] == [(1, "hours.md", 0)]


def test_an_unsupported_file_is_refused_by_name(client):
    response = upload(client, name="setup.exe", data=b"MZ")
    assert response.status_code == 415
    assert response.json()["error"]["message"].startswith("setup.exe: unsupported file type (supported: .docx, ")
    assert knowledge_store().find("town") is None
    assert list((uploads_dir()).glob("**/*.exe")) == []


def test_a_file_over_the_limit_is_refused_by_name(client, monkeypatch):
    import pimpmyllama.serving.upload as upload_module

    monkeypatch.setattr(upload_module, "UPLOAD_MAX_BYTES", 10)
    response = upload(client)
    assert response.status_code == 413
    assert response.json()["error"]["message"] == "hours.md: larger than the 0 MB upload limit"
    assert knowledge_store().find("town") is None


def test_an_unreadable_file_leaves_the_base_as_it_was(client):
    upload(client)
    response = upload(client, data=b"   \n")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "hours.md: no text found"
    assert chunk_texts() == ["The post office opens at nine."]
    assert (uploads_dir() / "town" / "hours.md").read_bytes() == HOURS
    assert sorted(p.name for p in (uploads_dir() / "town").iterdir()) == ["hours.md"]


def test_a_failed_ingestion_restores_the_previous_document(fake_engine, monkeypatch):
    from pimpmyllama.knowledge.embedders import Embedder
    from pimpmyllama.serving.app import create_app

    client = TestClient(create_app(), raise_server_exceptions=False)
    upload(client)

    def broken(self, texts, **options):
        raise RuntimeError("embedder crashed")

    monkeypatch.setattr(Embedder, "encode", broken)
    assert upload(client, data=b"The library opens at ten.\n").status_code == 500
    assert chunk_texts() == ["The post office opens at nine."]
    assert (uploads_dir() / "town" / "hours.md").read_bytes() == HOURS
    assert sorted(p.name for p in (uploads_dir() / "town").iterdir()) == ["hours.md"]
    assert upload(client, base="fresh").status_code == 500
    assert knowledge_store().find("fresh") is None
    assert list((uploads_dir() / "fresh").iterdir()) == []


def test_a_clients_folders_are_dropped_and_a_hidden_name_refused(client):
    assert upload(client, name="../../notes/hours.md").json()["document"] == "hours.md"
    assert sorted(p.name for p in (uploads_dir() / "town").iterdir()) == ["hours.md"]
    response = upload(client, name=".hidden.md")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "'.hidden.md' is not a file name that can be stored"


def test_settings_of_a_build(client):
    BuildStore().save("desk", Build.model_validate({"from": "tiny", "system": "Be kind.", "styles": ["brief"],
                                                    "parameters": {"temperature": 0.3}}))
    body = client.get("/pml/settings", params={"model": "desk"}).json()
    assert (body["model"], body["system"], body["styles"], body["knowledge"]) == ("desk", "Be kind.", ["brief"], [])
    assert body["parameters"]["temperature"] == 0.3
    assert body["styles_known"]["brief"] == "Answer briefly, in one or two sentences."
    assert client.get("/pml/settings", params={"model": "nope"}).status_code == 404


def test_the_api_key_applies(fake_engine):
    from pimpmyllama.serving.app import create_app

    with TestClient(create_app(api_key="k")) as keyed:
        assert keyed.get("/pml/sessions").status_code == 401
        assert keyed.get("/pml/knowledge").status_code == 401
        assert upload(keyed).status_code == 401
        assert keyed.get("/pml/sessions", headers={"Authorization": "Bearer k"}).status_code == 200
