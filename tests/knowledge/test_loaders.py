"""Loaders keep structure (headings, pages); bad files are skipped with a reason."""

import json

import pytest

from pimpmyllama.knowledge import loaders
from pimpmyllama.knowledge.documents import SkippedFile
from pimpmyllama.knowledge.loaders import load_document


def make_pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF with one line of Helvetica text per page."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", None, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET"
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                       f"/Resources << /Font << /F1 3 0 R >> >> /Contents {len(objects) + 2} 0 R >>")
        kids.append(f"{len(objects)} 0 R")
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>"
    out, offsets = "%PDF-1.4\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out.encode("latin-1")))
        out += f"{number} 0 obj\n{body}\nendobj\n"
    xref = len(out.encode("latin-1"))
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n"
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    return out.encode("latin-1")


def blocks(path):
    return [(b.text, b.heading, b.page) for b in load_document(path).blocks]


def test_markdown_headings_become_heading_paths(tmp_path):
    path = tmp_path / "hours.md"
    path.write_text("# Town hall\n\nOpen 8:30am.\n\n## Post office\n\nOpens at 9am.\n\n```\n# not a heading\n```\n\n"
                    "# Pool\n\nCaps required.\n")
    assert blocks(path) == [
        ("Open 8:30am.", "Town hall", None),
        ("Opens at 9am.", "Town hall > Post office", None),
        ("```\n# not a heading\n```", "Town hall > Post office", None),
        ("Caps required.", "Pool", None),
    ]
    assert load_document(path).title == "Town hall"


def test_plain_text_paragraphs(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("first paragraph\nsame paragraph\n\n\nsecond\n")
    assert blocks(path) == [("first paragraph\nsame paragraph", None, None), ("second", None, None)]


def test_html_keeps_headings_and_drops_scripts(tmp_path):
    path = tmp_path / "page.html"
    path.write_text("<html><head><title>Mairie</title><script>var x = 1;</script></head><body>"
                    "<nav>menu</nav><h1>Services</h1><p>The post office opens at <b>9am</b>.</p>"
                    "<h2>Pool</h2><ul><li>Caps required</li></ul></body></html>")
    assert blocks(path) == [("The post office opens at 9am .", "Services", None),
                            ("Caps required", "Services > Pool", None)]
    assert load_document(path).title == "Mairie"


def test_pdf_pages_are_numbered(tmp_path):
    path = tmp_path / "guide.pdf"
    path.write_bytes(make_pdf(["The post office opens at 9am.", "Caps are required at the pool."]))
    assert blocks(path) == [("The post office opens at 9am.", None, 1), ("Caps are required at the pool.", None, 2)]


def test_docx_headings_and_tables(tmp_path):
    import docx

    document = docx.Document()
    document.add_heading("Services", level=1)
    document.add_paragraph("The post office opens at 9am.")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "Pool"
    table.rows[0].cells[1].text = "caps required"
    path = tmp_path / "guide.docx"
    document.save(str(path))
    assert blocks(path) == [("The post office opens at 9am.", "Services", None), ("Pool | caps required", "Services", None)]


def test_json_and_jsonl_text_fields(tmp_path):
    path = tmp_path / "faq.jsonl"
    path.write_text(json.dumps({"title": "Post", "text": "Opens at 9am.", "id": 3}) + "\n\n" +
                    json.dumps({"question": "Pool?", "answer": "Caps required."}) + "\n")
    assert blocks(path) == [("Opens at 9am.", "Post", None), ("Caps required.", None, None), ("Pool?", None, None)]
    path = tmp_path / "faq.json"
    path.write_text(json.dumps([{"name": "Pool", "notes": "Caps required."}, "plain string"]))
    assert blocks(path) == [("Caps required.", "Pool", None), ("plain string", None, None)]


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("empty.txt", b"", "empty file"),
        ("blob.txt", b"\x00\x01\x02binary", "binary file"),
        ("latin1.txt", "café".encode("latin-1"), "not UTF-8 text"),
        ("bad.json", b"{oops", "invalid JSON"),
        ("bad.jsonl", b'{"text": "ok"}\n{oops\n', "line 2 is not valid JSON"),
        ("fake.pdf", b"%PDF-1.4 nonsense", "fake.pdf"),
        ("fake.docx", b"PK not a zip", "fake.docx"),
        ("image.png", b"\x89PNG", "unsupported file type"),
        ("blank.md", b"\n\n   \n", "no text found"),
    ],
)
def test_bad_files_are_skipped_with_their_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SkippedFile) as err:
        load_document(path)
    assert reason in str(err.value) and str(path) in str(err.value)


def test_enormous_files_are_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(loaders, "MAX_BYTES", 100)
    path = tmp_path / "big.txt"
    path.write_text("x" * 101)
    with pytest.raises(SkippedFile, match="larger than the"):
        load_document(path)
