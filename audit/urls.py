"""Routes of the public audit API, under /api/v1/audit/."""

from django.urls import path

from audit import api

urlpatterns = [
    path("checkpoint/", api.CheckpointView.as_view(), name="audit-checkpoint"),
    path("public-key/", api.PublicKeyView.as_view(), name="audit-public-key"),
    path("entries/", api.EntriesView.as_view(), name="audit-entries"),
    path("proofs/inclusion/", api.InclusionProofView.as_view(), name="audit-inclusion-proof"),
    path("proofs/consistency/", api.ConsistencyProofView.as_view(), name="audit-consistency-proof"),
]
