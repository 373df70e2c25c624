"""Framework v2 from the browser: an administrator changes a criterion's severity for one tier in
a new draft and publishes it after reading the differences; an owner then moves a v1 pilot."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from assessments.audit.context import Actor
from assessments.audit.models import AuditEvent
from assessments.frameworks.loader import FRAMEWORK_V2_PATH, framework_read_file
from assessments.frameworks.models import Criterion, Framework
from assessments.frameworks.services import framework_load
from assessments.pilots.selectors import assessment_open
from assessments.pilots.services import pilot_create
from tests.browser.test_pilot_journeys import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_tunes_a_tier_severity_and_an_owner_moves_a_v1_pilot(page, live_server, users, framework, shot):
    pilot = pilot_create(
        organisation=framework.organisation, actor=Actor.for_user(users["owner"]), name="Invoice coding",
        risk_tier="minimal", technical_owner=users["owner"],
    )  # fmt: skip
    v2 = framework_load(
        organisation=framework.organisation, spec=framework_read_file(FRAMEWORK_V2_PATH), actor=Actor.system("t")
    )

    sign_in(page, live_server, "admin")
    page.goto(f"{live_server.url}/frameworks/{v2.pk}/")
    gv14 = page.locator("tr", has_text="GV-14")
    expect(gv14.locator("td").nth(2)).to_have_text("—")  # does not apply to minimal-risk pilots
    expect(gv14.locator("td").nth(4)).to_have_text("Blocking")
    expect(page.locator("tr", has_text="EV-01").locator("abbr").first).to_have_text("(high only)")
    shot("v2")
    page.get_by_role("button", name="Copy to new draft").click()
    draft = Framework.objects.get(status="draft")
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"v{draft.version}")
    page.locator("tr", has_text="GV-14").get_by_role("link", name="Edit").click()
    page.get_by_label("Severity for minimal-risk pilots").select_option("minor")
    page.get_by_label("Severity for high-risk pilots").select_option("")  # "Does not apply" for every tier...
    page.get_by_label("Severity for limited-risk pilots").select_option("")
    page.get_by_label("Severity for minimal-risk pilots").select_option("")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("p.error")).to_have_text("Give the criterion a severity for at least one risk tier.")
    shot("no-tier-refused")
    page.get_by_label("Severity for minimal-risk pilots").select_option("minor")
    page.get_by_label("Severity for limited-risk pilots").select_option("major")
    page.get_by_label("Severity for high-risk pilots").select_option("blocking")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".message")).to_contain_text("Saved.")
    assert Criterion.objects.get(framework=draft, code="GV-14").severity_by_tier == {
        "minimal": "minor", "limited": "major", "high": "blocking",
    }  # fmt: skip
    page.get_by_role("link", name="Review and publish").click()
    expect(page.locator("body")).to_contain_text("Severity by risk tier: minimal does not apply → minor")
    shot("publish-diff")
    page.get_by_role("button", name=f"Publish v{draft.version}").click()
    expect(page.locator(".message")).to_contain_text("ublished")

    page.goto(f"{live_server.url}/accounts/logout/")
    sign_in(page, live_server, "owner")
    page.goto(f"{live_server.url}/pilots/{pilot.pk}/")
    notice = page.locator(".notice", has_text="A newer framework version")
    expect(notice).to_contain_text(f"AI production readiness v{draft.version}")
    notice.get_by_role("link").click()
    expect(page.locator("body")).to_contain_text("GR-03")  # dropped: merged into EV-05
    shot("move-preview")
    page.get_by_role("button", name=re.compile(r"^Move to ")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Invoice coding")
    assert assessment_open(pilot=pilot).framework_id == draft.pk
    line = page.locator('[data-code="GV-14"]')
    expect(line.locator(".sev")).to_have_text("Minor")
    shot("moved")
    assert AuditEvent.objects.filter(action="assessment.migrated").count() == 1
