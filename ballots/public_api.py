"""The public API (DESIGN.md "Public API and pages"): elections, their rounds, published results.

No login. Results come from the latest published version, byte for byte the signed document, with the
same ETag as its page's JSON twin.
"""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from ballots.api import ERROR_ENVELOPE
from ballots.models import Candidate, Election, Round
from ballots.versions import serve_latest
from config.errors import NotFound


class CandidateSerializer(serializers.ModelSerializer):
    class Meta:
        model = Candidate
        fields = ["code", "name"]


class RoundSerializer(serializers.ModelSerializer):
    candidates = serializers.SerializerMethodField()
    results = serializers.SerializerMethodField()

    class Meta:
        model = Round
        fields = ["number", "status", "opens_at", "closes_at", "candidates", "results"]

    def get_candidates(self, round_: Round) -> list[str]:
        return [c.code for c in round_.candidates.all()]

    def get_results(self, round_: Round) -> str:
        return f"/api/v1/elections/{round_.election.slug}/rounds/{round_.number}/results/"


class ElectionSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Election
        fields = ["slug", "name", "status"]


class ElectionSerializer(serializers.ModelSerializer):
    candidates = CandidateSerializer(many=True)
    rounds = RoundSerializer(many=True)

    class Meta:
        model = Election
        fields = [
            "slug", "name", "status", "roster_cutoff", "rule", "runoff_after_days", "certifications_required",
            "candidates", "rounds",
        ]  # fmt: skip


class ElectionListView(generics.ListAPIView):
    serializer_class = ElectionSummarySerializer
    queryset = Election.objects.order_by("slug")

    @extend_schema(summary="Elections")
    def get(self, request: Request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ElectionDetailView(generics.RetrieveAPIView):
    serializer_class = ElectionSerializer
    lookup_field = "slug"
    queryset = Election.objects.prefetch_related("candidates", "rounds__candidates", "rounds__election")

    @extend_schema(summary="An election: its candidates, rule, rounds and schedule")
    def get(self, request: Request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RoundResultsView(APIView):
    @extend_schema(
        summary="The latest published results document of a round",
        description="Provisional or official, signed (DESIGN.md). Answers 304 to a matching If-None-Match.",
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,
            304: OpenApiResponse(description="The reader's copy is the latest version"),
            404: OpenApiResponse(ERROR_ENVELOPE, description="`not_found`: no such round, or nothing published yet"),
        },
    )
    def get(self, request: Request, slug: str, number: int) -> HttpResponse:
        response = serve_latest(request, slug, number, "document")
        if response is None:
            raise NotFound(f"Round {number} of {slug} has no published results (or does not exist).")
        return response
