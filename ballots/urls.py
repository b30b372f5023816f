"""Routes of the station API, under /api/v1/station/."""

from django.urls import path

from ballots import api

urlpatterns = [
    path("", api.StationInfoView.as_view(), name="station-info"),
    path("voters/<str:member_no>/", api.VoterView.as_view(), name="station-voter"),
    path("checkins/", api.CheckInView.as_view(), name="station-checkin"),
    path("ballots/", api.BallotView.as_view(), name="station-ballot"),
    path("ballots/batch/", api.BallotBatchView.as_view(), name="station-ballot-batch"),
    path("returns/", api.ReturnView.as_view(), name="station-return"),
    path("close/", api.CloseView.as_view(), name="station-close"),
]
