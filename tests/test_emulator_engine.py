"""The pieces under the HTTP layer: body parsing, lifecycle, PDF text, extraction, schemas."""

from __future__ import annotations

import json
import zlib

import jsonschema
import pytest

from batchd.emulator import extract, lifecycle, pdf
from batchd.emulator.bodies import iter_requests
from batchd.emulator.errors import ApiError
from batchd.emulator.schemafill import Evidence, choose, fill
from batchd.emulator.testing import raw


def test_create_bodies_are_read_one_request_at_a_time():
    body = json.dumps({"requests": [{"custom_id": "a", "params": {"x": [1, {"y": "}"}]}},
                                    {"params": {}, "custom_id": "b"}]}, indent=2)
    assert list(iter_requests(body)) == [(0, "a", {"x": [1, {"y": "}"}]}), (1, "b", {})]
    reader = iter_requests('{"requests": [{"custom_id": "a", "params": {}}, {"custom_id": "a", "params": {}}]}')
    assert next(reader)[1] == "a"
    with pytest.raises(ApiError, match="duplicate"):
        next(reader)
    with pytest.raises(ApiError, match="Extra data"):
        list(iter_requests('{"requests": [{"custom_id": "a", "params": {}}]} trailing'))


def test_lifecycle_is_a_function_of_time():
    line = lifecycle.Timeline(created_at=100.0, processing_time=50.0, expires_at=120.0)
    assert line.end_at == 120.0 and line.status(119.9) == "in_progress" and line.status(120.0) == "ended"
    canceled = lifecycle.Timeline(100.0, 50.0, 1000.0, cancel_initiated_at=110.0, cancel_delay=5.0)
    assert canceled.status(112.0) == "canceling" and canceled.end_at == 115.0
    early, late = lifecycle.Dice(0.1, 0.9, 0.0, 1), lifecycle.Dice(0.5, 0.9, 0.0, 2)
    assert lifecycle.fate(canceled, early, 0.0, 0.0) == "processed"
    assert lifecycle.fate(canceled, late, 0.0, 0.0) == "canceled"
    assert lifecycle.fate(line, late, 0.0, 0.0) == "expired"
    assert lifecycle.fate(line, early, 0.95, 0.0) == "failed"
    assert lifecycle.fate(line, early, 0.5, 0.45) == "expired"
    assert lifecycle.dice(0, "b", 3) == lifecycle.dice(0, "b", 3) != lifecycle.dice(1, "b", 3)
    assert lifecycle.dice(0, "b", 0).order > max(lifecycle.dice(0, "b", i).order for i in range(1, 200))


def _pdf_with(content: bytes, filters: bytes = b"/Filter /FlateDecode") -> bytes:
    data = zlib.compress(content) if b"Flate" in filters else content
    return (b"%PDF-1.5\n1 0 obj\n<< /Type /Page >>\nendobj\n2 0 obj\n<< /Length " + str(len(data)).encode()
            + b" " + filters + b" >>\nstream\n" + data + b"\nendstream\nendobj\n3 0 obj\n<< /Type /Page >>\nendobj\n")


def test_pdf_text_operators_and_strings():
    content = (b"BT /F1 12 Tf 72 700 Td (Hello \\(world\\)) Tj 0 -14 Td [(Spa) -400 (ced) 20 (out)] TJ "
               b"T* <48657820737472696E67> Tj (Octal \\101\\102) ' ET")
    text = pdf.extract_text(_pdf_with(content))
    assert text.splitlines() == ["Hello (world)", "Spa cedout", "Hex string", "Octal AB"]
    assert pdf.page_count(_pdf_with(content)) == 2
    utf16 = b"BT (" + "\ufeffCaf\u00e9".encode("utf-16-be") + b") Tj ET"
    assert "Café" in pdf.extract_text(_pdf_with(utf16, b""))
    assert pdf.extract_text(b"%PDF-1.4 garbage") == ""
    image = b"%PDF-1.4\n1 0 obj\n<< /Subtype /Image /Length 4 >>\nstream\n(no) Tj\nendstream\nendobj\n"
    assert pdf.extract_text(image) == ""


def test_extraction_of_contacts_and_facts():
    text = ("From: Priya Raman\nPriya Raman, Director of Operations at Globex Corporation\n"
            "priya.raman@globex.com | +91 98765 43210\n\nOn 3 April 2025 we met. Also write to billing@globex.com.")
    assert extract.emails(text) == ["priya.raman@globex.com", "billing@globex.com"]
    assert extract.phones(text) == ["+91 98765 43210"]
    assert extract.dates(text) == ["2025-04-03"]
    contacts = extract.contacts(text)
    assert contacts[0] == extract.Contact("Priya Raman", "priya.raman@globex.com", "+91 98765 43210",
                                          "Globex Corporation", "Director of Operations")
    assert contacts[1].email == "billing@globex.com" and contacts[1].name is None
    assert contacts[1].company == "Globex Corporation"
    assert extract.phones("Invoice 2025-03-14, order 12345, total 1,250.00 on 14.03.2025") == []
    assert extract.phones("call 555-0100 today") == ["555-0100"]
    assert extract.name_from_email("john_smith@x.org") == "John Smith"


def test_enum_choice_scores_keywords_and_falls_back():
    evidence = Evidence("The court ruled the contract void; our attorney filed an appeal.")
    decision = choose(["technology", "finance", "legal", "general"], evidence)
    assert decision.value == "legal" and "court" in decision.terms and decision.confidence > 0.5
    assert choose(["red", "blue", "other"], Evidence("nothing relevant")).value == "other"
    assert choose(["red", "blue"], Evidence("nothing relevant")).value == "red"
    assert choose(["urgent_request", "routine"], Evidence("This urgent request needs attention")).value == \
        "urgent_request"


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"n": {"type": "integer", "exclusiveMinimum": 3, "maximum": 9}},
     "required": ["n"]},
    {"type": "object", "properties": {"items": {"type": "array", "minItems": 3, "maxItems": 4, "uniqueItems": False,
                                                "items": {"type": "object", "properties": {
                                                    "label": {"type": "string", "minLength": 5}},
                                                    "required": ["label"]}}},
     "required": ["items"]},
    {"type": "object", "properties": {"choice": {"oneOf": [{"type": "null"}, {"enum": [1, 2, 3]}]},
                                      "fixed": {"const": "v1"},
                                      "both": {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}},
                                                          "required": ["a"]},
                                                         {"properties": {"b": {"type": "boolean"}},
                                                          "required": ["b"]}]}},
     "required": ["choice", "fixed", "both"]},
    {"type": "object", "properties": {"when": {"type": "string", "format": "date-time"},
                                      "site": {"type": "string", "format": "uri"},
                                      "code": {"type": "string", "pattern": "^[A-Z]{3}$"}},
     "required": ["when", "site"]},
])
def test_filled_inputs_validate(schema):
    for text in ("", "Plain words only.", "Visit https://example.org on 2024-05-06 with Jane Doe."):
        jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(
            fill(schema, Evidence(text)))


def test_protocol_errors_use_the_envelope(emulator):
    status, headers, body = raw(emulator.base_url, "BREW", "/v1/messages")
    assert status == 501 and headers["content-type"] == "application/json"
    assert json.loads(body)["type"] == "error"


def test_contacts_from_clauses_lists_and_foreign_domains():
    lease = ('This Lease is made between Harborview Properties LLC ("Landlord"), represented by its managing '
             'partner Daniel Okafor, and Bluefin Analytics Inc. ("Tenant"), represented by its CEO Maria Santos.')
    found = {c.name: (c.company, c.role) for c in extract.contacts(lease)}
    assert found == {"Daniel Okafor": ("Harborview Properties LLC", "managing partner"),
                     "Maria Santos": ("Bluefin Analytics Inc.", "CEO")}
    notes = "Fixed CVE-2026-31337.\nMaintainers: Lena Ortiz (lena@orbit.dev), Samir Haddad (samir@orbit.dev)."
    assert [(c.name, c.email, c.phone) for c in extract.contacts(notes)] == [
        ("Lena Ortiz", "lena@orbit.dev", None), ("Samir Haddad", "samir@orbit.dev", None)]
    invoice = ("ACME Industrial Supplies Ltd.\nQuestions: Tom Fielding, Accounts Receivable, "
               "tom.fielding@acme-industrial.co.uk, +44 117 496 0321.")
    [tom] = extract.contacts(invoice)
    assert tom == extract.Contact("Tom Fielding", "tom.fielding@acme-industrial.co.uk", "+44 117 496 0321",
                                  "ACME Industrial Supplies Ltd.", None)
