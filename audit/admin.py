"""The audit log in the admin: a read-only browser for everyone, and "verify now" for auditors."""

from __future__ import annotations

import json

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html

from audit.models import Checkpoint, Entry


class ReadOnlyAdmin(admin.ModelAdmin):
    """Nobody adds, changes or deletes here, superusers included: the database would refuse anyway."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "leaf_index", "action", "actor", "created_at"]
    list_filter = ["action"]
    search_fields = ["=actor", "=id"]
    fields = ["id", "leaf_index", "action", "actor", "created_at", "payload_json"]
    readonly_fields = fields
    list_select_related = ["leaf"]
    show_full_result_count = False
    change_list_template = "admin/audit/entry/change_list.html"

    @admin.display(description="leaf")
    def leaf_index(self, entry: Entry):
        leaf = getattr(entry, "leaf", None)
        return "pending" if leaf is None else leaf.index

    @admin.display(description="payload")
    def payload_json(self, entry: Entry):
        return format_html(
            '<pre class="kalpi-hash" style="white-space: pre-wrap">{}</pre>',
            json.dumps(entry.payload, indent=2, sort_keys=True, ensure_ascii=False),
        )

    def get_urls(self):
        return [
            path("verify/", self.admin_site.admin_view(self.verify_view), name="audit_entry_verify"),
            *super().get_urls(),
        ]

    def verify_view(self, request: HttpRequest) -> HttpResponse:
        """Verify the whole log now: every leaf, every checkpoint's root and signature, their consistency."""
        if not request.user.has_perm("audit.verify_log"):
            raise PermissionDenied
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "title": "Verify the audit log"}
        if request.method == "POST":
            from audit.verification import verify_database

            context["report"] = verify_database()
        return TemplateResponse(request, "admin/audit/entry/verify.html", context)


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ["id", "tree_size", "root_hex", "created_at"]
    fields = ["id", "tree_size", "root_hex", "created_at", "note"]
    readonly_fields = fields

    @admin.display(description="root")
    def root_hex(self, checkpoint: Checkpoint) -> str:
        return bytes(checkpoint.root).hex()
