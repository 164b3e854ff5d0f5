"""Export the bundled sample segment into a local sandbox and print the report.

    python examples/export_sample.py [rejections.csv]

Nothing leaves the machine: the sandbox is a local Autopilot-compatible server with its own key. For a
real export, drop the Sandbox and build the client with your key (`AutopilotClient()` reads
AUTOPILOT_API_KEY) and the real base URL (the default).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from autopilot_segments import AutopilotClient, CustomField, Exporter, FieldMapping
from autopilot_segments.sandbox import Sandbox
from autopilot_segments.sources import open_source, sample_segment_path

# Which column goes where: the email, Autopilot's standard fields, and typed custom fields.
mapping = FieldMapping(
    email="email",
    fields={
        "FirstName": "first_name",
        "LastName": "last_name",
        "Company": "company",
        "MailingCity": "city",
        "MailingCountry": "country",
        "Phone": "phone",
    },
    custom=[
        CustomField("Loyalty Points", "integer", source="loyalty_points"),
        CustomField("Signup Date", "date", source="signup_date"),
        CustomField("VIP", "boolean", source="vip"),
    ],
)


def main() -> int:
    rejections = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "rejected.csv"
    # The sandbox has no rate limit, so the client need not pace itself at Autopilot's 5 requests/s.
    with (
        Sandbox() as sandbox,
        AutopilotClient(sandbox.api_key, base_url=sandbox.url, requests_per_second=1000) as client,
    ):
        exporter = Exporter(client, mapping)
        report = exporter.export(open_source(sample_segment_path()), segment="VIP customers")
    print(report.summary())
    report.write_rejections(rejections)
    print(f"{len(report.rejected):,} rejected rows written to {rejections}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
