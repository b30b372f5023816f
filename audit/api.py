"""The public audit API: latest checkpoint, public key, entries by range, inclusion and consistency proofs."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import keys, merkle
from audit.selectors import NodeReader, entries_in_range, latest_checkpoint, tree_size
from config.errors import Invalid, NotFound

MAX_ENTRIES = 1000
# Entries and proofs below the tree size never change; the checkpoint changes every minute or so.
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=5"


def _int_param(request: Request, name: str, *, minimum: int = 0) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        raise Invalid(f"The query parameter {name} is required.", fields={name: ["This parameter is required."]})
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(f"{name} must be a whole number.", fields={name: ["A whole number is required."]}) from None
    if value < minimum:
        raise Invalid(f"{name} must be at least {minimum}.", fields={name: [f"At least {minimum}."]})
    return value


def _text(body: str, cache_control: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = cache_control
    return response


class CheckpointView(APIView):
    @extend_schema(responses={(200, "text/plain"): OpenApiTypes.STR}, summary="The latest signed checkpoint")
    def get(self, request: Request) -> HttpResponse:
        checkpoint = latest_checkpoint()
        if checkpoint is None:
            raise NotFound("No checkpoint has been signed yet.")
        return _text(checkpoint.note, SHORT)


class PublicKeyView(APIView):
    @extend_schema(responses={(200, "text/plain"): OpenApiTypes.STR}, summary="The service's verifier key")
    def get(self, request: Request) -> HttpResponse:
        return _text(keys.verifier_key() + "\n", "public, max-age=3600")


class EntriesView(APIView):
    class OutputSerializer(serializers.Serializer):
        class Item(serializers.Serializer):
            index = serializers.IntegerField()
            entry = serializers.DictField()

        entries = Item(many=True)

    @extend_schema(
        parameters=[OpenApiParameter("start", int, required=True), OpenApiParameter("end", int, required=True)],
        responses=OutputSerializer,
        summary=f"Entries with leaf indices start <= i < end (at most {MAX_ENTRIES}; clipped to the tree size)",
    )
    def get(self, request: Request) -> Response:
        start = _int_param(request, "start")
        end = _int_param(request, "end")
        if end <= start:
            raise Invalid("end must be greater than start.", fields={"end": ["Must be greater than start."]})
        size = tree_size()
        if start >= size:
            raise Invalid(f"start must be below the tree size ({size}).", fields={"start": [f"Below {size}."]})
        end = min(end, start + MAX_ENTRIES, size)
        response = Response({"entries": [{"index": i, "entry": doc} for i, doc in entries_in_range(start, end)]})
        response["Cache-Control"] = IMMUTABLE
        return response


class InclusionProofView(APIView):
    class OutputSerializer(serializers.Serializer):
        index = serializers.IntegerField()
        size = serializers.IntegerField()
        leaf_hash = serializers.CharField()
        proof = serializers.ListField(child=serializers.CharField())

    @extend_schema(
        parameters=[OpenApiParameter("index", int, required=True), OpenApiParameter("size", int, required=True)],
        responses=OutputSerializer,
        summary="Inclusion proof of leaf `index` in the tree of `size` leaves (RFC 9162 §2.1.3)",
    )
    def get(self, request: Request) -> Response:
        index = _int_param(request, "index")
        size = _int_param(request, "size", minimum=1)
        _check_size(size)
        if index >= size:
            raise Invalid("index must be below size.", fields={"index": [f"Below {size}."]})
        nodes = NodeReader().prefetch([(0, index), *merkle.inclusion_proof_nodes(index, size)])
        proof = merkle.inclusion_proof(index, size, nodes)
        body = {"index": index, "size": size, "leaf_hash": nodes(0, index).hex(), "proof": [h.hex() for h in proof]}
        response = Response(body)
        response["Cache-Control"] = IMMUTABLE
        return response


class ConsistencyProofView(APIView):
    class OutputSerializer(serializers.Serializer):
        first = serializers.IntegerField()
        second = serializers.IntegerField()
        proof = serializers.ListField(child=serializers.CharField())

    @extend_schema(
        parameters=[OpenApiParameter("first", int, required=True), OpenApiParameter("second", int, required=True)],
        responses=OutputSerializer,
        summary="Consistency proof between trees of `first` and `second` leaves (RFC 9162 §2.1.4)",
    )
    def get(self, request: Request) -> Response:
        first = _int_param(request, "first", minimum=1)
        second = _int_param(request, "second", minimum=1)
        _check_size(second)
        if first > second:
            raise Invalid("first must not exceed second.", fields={"first": [f"At most {second}."]})
        nodes = NodeReader().prefetch(merkle.consistency_proof_nodes(first, second))
        proof = merkle.consistency_proof(first, second, nodes)
        response = Response({"first": first, "second": second, "proof": [h.hex() for h in proof]})
        response["Cache-Control"] = IMMUTABLE
        return response


def _check_size(size: int) -> None:
    current = tree_size()
    if size > current:
        raise Invalid(f"size {size} is beyond the tree ({current} leaves).", fields={"size": [f"At most {current}."]})
