"""Delivery templates (a tiny safe language), drafts, previews and missing-field counts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from store.campaign.activation import activate
from store.campaign.delivery import (
    Placeholder,
    create_delivery,
    delete_delivery,
    get_delivery,
    list_deliveries,
    missing_counts,
    parse_template,
    preview,
    preview_json,
)
from store.campaign.store import open_campaign
from store.engines.sqlite import open_store
from store.errors import InputError
from tests.engine_helpers import resolve_rule
from tests.test_activation import AS_OF, below, make_profile_store

# ------------------------------------------------------------------ templates


def test_placeholders_and_defaults() -> None:
    template = parse_template('Hi {{first_name}}, {{ first_name | default("there") }}!'
                              " {{ city|default('your town') }}")
    assert template.fields == ("first_name", "city")
    assert template.parts[1] == Placeholder("first_name")
    assert template.parts[3] == Placeholder("first_name", "there")
    assert template.render({"first_name": "Ann", "city": "Oslo"}) == "Hi Ann, Ann! Oslo"
    assert template.render({"first_name": None}) == "Hi , there! your town"
    assert template.render({"first_name": ""}) == "Hi , there! your town"
    assert template.needs("first_name") and not template.needs("city")


def test_values_are_rendered_as_text() -> None:
    template = parse_template("{{ a }}|{{ b }}|{{ c }}|{{ d }}")
    assert template.render({"a": True, "b": 3.0, "c": 2.5, "d": 7}) == "true|3|2.5|7"


def test_defaults_may_hold_quotes_and_braces() -> None:
    template = parse_template(r'{{ x | default("say \"hi\" }}") }} and {{ y | default("") }}.')
    assert template.render({}) == 'say "hi" }} and .'


def test_text_without_placeholders_is_kept_as_is() -> None:
    for text in ("", "plain", "a } b }} c", "{ single }"):
        assert parse_template(text).render({}) == text


@pytest.mark.parametrize("text", [
    "{{ __import__('os').system('echo hi') }}",
    "{{ user.name }}",
    "{{ name | upper }}",
    "{{ name | default(there) }}",
    "{{ 1 + 1 }}",
    "{{ }}",
    "{{ name name }}",
    "{% if x %}",
])
def test_anything_else_in_braces_is_refused(text: str) -> None:
    template_text = f"Hello {text}" if "{{" in text else text
    if "{{" not in text:
        assert parse_template(template_text).render({}) == template_text  # no statements exist
        return
    with pytest.raises(InputError, match="not a placeholder"):
        parse_template(template_text)


def test_an_unclosed_placeholder_names_its_place() -> None:
    with pytest.raises(InputError, match=r"body, line 2, column 4: '\{\{' is never closed"):
        parse_template("Hi\nyo {{ first_name", "body")


# ------------------------------------------------------------------ deliveries


@pytest.fixture()
def campaign(tmp_path: Path) -> sqlite3.Connection:
    make_profile_store(tmp_path / "shop.db")
    conn = open_store(tmp_path / "shop.db", readonly=True)
    store = open_campaign(tmp_path / "campaign.db")
    activate(conn, store, resolve_rule(conn, below(36), "Newsletter"), AS_OF, ["email", "first_name", "vip"])
    conn.close()
    yield store
    store.close()


def test_create_list_and_preview(campaign: sqlite3.Connection) -> None:
    delivery = create_delivery(campaign, "newsletter", "June news",
                               'Dear {{ first_name | default("friend") }} ({{ profile_id }})',
                               "News for {{ first_name }}")
    assert delivery.status == "draft" and delivery.channel == "email"
    assert list_deliveries(campaign) == [delivery]
    assert get_delivery(campaign, str(delivery.id)) == delivery
    shown = preview(campaign, delivery, limit=5)
    assert shown.members == 35
    assert [m.profile_id for m in shown.messages] == ["p0001", "p0002", "p0003", "p0004", "p0005"]
    assert shown.messages[0].subject == "News for Bob"
    assert shown.messages[0].body == "Dear Bob (p0001)"
    assert shown.messages[4].subject == "News for "  # p0005 has no first name
    assert shown.messages[4].body == "Dear friend (p0005)"
    # first names miss for multiples of 5 below 36: 5, 10, ..., 35
    assert shown.missing == {"first_name": 7, "profile_id": 0}
    assert shown.needed == ("first_name", "profile_id")  # used somewhere with no default
    following = preview(campaign, delivery, limit=2, after="p0005")
    assert [m.profile_id for m in following.messages] == ["p0006", "p0007"]
    payload = preview_json(shown)
    assert payload["members"] == 35 and payload["messages"][0]["body"] == "Dear Bob (p0001)"


def test_missing_counts_cover_each_used_field(campaign: sqlite3.Connection) -> None:
    # emails miss for multiples of 7 below 36: 7, 14, 21, 28, 35; vip is never missing
    assert missing_counts(campaign, 1, ("email", "first_name", "vip")) == {
        "email": 5, "first_name": 7, "vip": 0}


def test_templates_must_use_the_audience_fields(campaign: sqlite3.Connection) -> None:
    with pytest.raises(InputError, match=r"Body uses \{\{ first_nam \}\}.*'first_name'"):
        create_delivery(campaign, 1, "Typo", "Hi {{ first_nam }}", "Subject")
    with pytest.raises(InputError, match="no such field"):
        create_delivery(campaign, 1, "Not captured", "Hi {{ city }}", "Subject")
    assert list_deliveries(campaign) == []


def test_delivery_fields_are_checked(campaign: sqlite3.Connection) -> None:
    with pytest.raises(InputError, match="needs a subject"):
        create_delivery(campaign, 1, "No subject", "Body")
    with pytest.raises(InputError, match="channel"):
        create_delivery(campaign, 1, "Fax", "Body", "S", channel="fax")
    with pytest.raises(InputError, match="needs a name"):
        create_delivery(campaign, 1, "  ", "Body", "S")
    with pytest.raises(InputError, match="No audience"):
        create_delivery(campaign, "nope", "N", "Body", "S")
    sms = create_delivery(campaign, 1, "Text", "Hi {{ first_name }}", channel="sms")
    assert sms.subject == "" and sms.channel == "sms"
    delete_delivery(campaign, sms.id)
    with pytest.raises(InputError, match="No delivery"):
        get_delivery(campaign, sms.id)
    with pytest.raises(InputError, match="No delivery"):
        delete_delivery(campaign, sms.id)
