"""The OpenAPI schema and interactive docs: every station endpoint, every error code it can answer."""

from __future__ import annotations

from ballots.errors import STATION_ERRORS


def test_the_schema_documents_every_station_endpoint_and_error_code(client, db):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    for path in ("/api/v1/station/", "/api/v1/station/voters/{member_no}/", "/api/v1/station/checkins/",
                 "/api/v1/station/ballots/", "/api/v1/station/ballots/batch/", "/api/v1/station/returns/",
                 "/api/v1/station/close/"):  # fmt: skip
        assert path in paths, path
    text = response.content.decode()
    for error in STATION_ERRORS:
        assert f"`{error.code}`" in text, error.code
    for code in ("not_authenticated", "invalid"):
        assert f"`{code}`" in text
    assert paths["/api/v1/station/checkins/"]["post"]["responses"]["403"]["description"].count("`") >= 4


def test_the_interactive_docs_are_served_without_a_cdn(client, db):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower() and "swagger-ui" in page.text


def test_the_schema_generates_without_a_warning(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3")
