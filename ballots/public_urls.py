"""Routes of the public API (under /api/v1/elections/) and of the result pages (under /results/)."""

from django.urls import path

from ballots import pages, public_api

api_urlpatterns = [
    path("", public_api.ElectionListView.as_view(), name="api-elections"),
    path("<slug:slug>/", public_api.ElectionDetailView.as_view(), name="api-election"),
    path("<slug:slug>/rounds/<int:number>/results/", public_api.RoundResultsView.as_view(), name="api-round-results"),
]

page_urlpatterns = [
    path("", pages.election_index, name="results-index"),
    path("verify/", pages.how_to_verify, name="results-verify"),
    path("<slug:slug>/", pages.election_page, name="results-election"),
    path("<slug:slug>/rounds/<int:number>/", pages.round_page, name="results-round"),
    path("<slug:slug>/rounds/<int:number>/results.json", pages.round_json, name="results-round-json"),
    path("<slug:slug>/rounds/<int:number>/results.csv", pages.round_csv, name="results-round-csv"),
]
