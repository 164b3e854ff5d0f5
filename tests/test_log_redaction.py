"""No log line of the library or its transport carries an email address, at any level, encoded or not."""

from __future__ import annotations

import logging
import re

import pytest
from _exporting import make_client, make_mapping

from autopilot_segments import AutopilotClient, Exporter, NotFoundError
from autopilot_segments._http.log_redaction import REDACTION_FILTER, redact_emails
from autopilot_segments.sandbox import Sandbox

# An address in any form a log line could hold it: as is, %40-encoded, or encoded twice.
_ANY_EMAIL = re.compile(r"(@|%40|%2540)[a-z0-9-]+\.(com|org)", re.IGNORECASE)
_FORMAT = logging.Formatter("%(name)s %(levelname)s %(message)s")


def _rows(n: int, start: int = 0) -> list[dict[str, object]]:
    return [
        {"Email": f"Person.{i}@Example.com", "first_name": "A", "tier": i} for i in range(start, start + n)
    ]


def test_no_log_record_holds_an_email_during_an_export_with_probes_adds_and_removals(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with Sandbox(bulk_list="ignored") as sb:
        list_id = sb.create_list("VIP")  # an existing list: its membership is probed by email
        sb.add_contacts([{"Email": "seed@example.org"}])
        sb.inject("503", times=2, path_prefix="/list/")  # urllib3 logs its retries too
        with caplog.at_level(logging.DEBUG), make_client(sb) as client:  # root: every logger
            report = Exporter(client, make_mapping()).export(_rows(30), segment="VIP")
            assert report.exported == 30
            # Adds and removals by email, a probe that finds nobody, a contact read that 404s.
            assert client.add_to_list(list_id, "seed@example.org") is True
            assert client.is_on_list(list_id, "Person.3@Example.com") is True
            assert client.remove_from_list(list_id, "seed@example.org") is True
            assert client.is_on_list(list_id, "nobody+tag@example.org") is False
            with pytest.raises(NotFoundError):
                client.get_contact("missing@example.org")
            logging.getLogger("autopilot_segments.exporter").warning(
                "failed for %s",
                "x@example.com",
                exc_info=NotFoundError(
                    status=404, method="GET", url=f"{sb.url}/contact/x%40example.com", message="gone"
                ),
            )
    records = caplog.records
    # The capture really saw the transport's lines and the sandbox's, with the paths that held emails.
    names = {r.name for r in records}
    assert "urllib3.connectionpool" in names
    assert "autopilot_segments.sandbox" in names
    assert any("<email>" in r.getMessage() for r in records if r.name == "urllib3.connectionpool")
    leaks = [_FORMAT.format(r) for r in records if _ANY_EMAIL.search(_FORMAT.format(r))]
    assert leaks == []


def test_the_filter_is_installed_once_however_many_clients() -> None:
    for _ in range(3):
        with AutopilotClient("0123456789abcdef0123456789abcdef"):
            pass
    for name in ("urllib3.connectionpool", "autopilot_segments.client", "autopilot_segments.exporter"):
        filters = logging.getLogger(name).filters
        assert filters.count(REDACTION_FILTER) == 1, name


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('"GET /v1/contact/person%40example.com HTTP/1.1" 200', '"GET /v1/contact/<email> HTTP/1.1" 200'),
        ("/list/contactlist_1/contact/a.b+c@example.co.uk", "/list/contactlist_1/contact/<email>"),
        ("url='/v1/contact/x%2540example.com'", "url='/v1/contact/<email>'"),
        ("rejected Ann@Example.COM (bad)", "rejected <email> (bad)"),
        ("nothing personal here", "nothing personal here"),
    ],
)
def test_emails_are_replaced_in_any_form(line: str, expected: str) -> None:
    assert redact_emails(line) == expected
