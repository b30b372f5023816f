"""Admin for the roster: members and branches, and the roster import (upload, dry run, confirm)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from members.models import Branch, Member
from members.services import RosterFileError, import_roster, save_member

_TOKEN = re.compile(r"[0-9a-f]{32}")
# A search term that is a member number (letters, digits and hyphens, with at least one digit).
_MEMBER_NO_TERM = re.compile(r"(?=[A-Za-z0-9-]*[0-9])[A-Za-z0-9][A-Za-z0-9-]{0,31}")
REPORT_ERRORS_SHOWN = 200


@admin.register(Branch)
class BranchAdmin(admin.ModelAdmin):
    list_display = ["code", "name"]
    search_fields = ["code", "name"]


class RosterUploadForm(forms.Form):
    file = forms.FileField(label="Roster CSV", help_text="The party's export, with a header line.")


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = ["member_no", "last_name", "first_name", "branch", "status", "joined_on", "dues_paid_until"]
    list_filter = ["status", "branch"]
    # Names by substring. A term that looks like a member number (it has a digit) is looked up by
    # number instead, exactly, through the unique index: see get_search_results.
    search_fields = ["last_name", "first_name"]
    list_select_related = ["branch"]
    autocomplete_fields = ["branch"]
    readonly_fields = ["updated_at"]
    # Counting a million members on every page costs more than the page; the paginator still counts.
    show_full_result_count = False
    change_list_template = "admin/members/member/change_list.html"

    def get_search_results(self, request, queryset, search_term):
        """A member number is found through its index; anything else searches the names.

        Django's `=member_no` would compare UPPER(member_no), which no index serves: on a million
        members that walked the whole table (0.5 s) to find one row. Member numbers are compared as
        typed and in upper and lower case, which covers how officials type them.
        """
        term = search_term.strip()
        if _MEMBER_NO_TERM.fullmatch(term):
            return queryset.filter(member_no__in={term, term.upper(), term.lower()}), False
        return super().get_search_results(request, queryset, search_term)

    def save_model(self, request, obj, form, change):
        save_member(member=obj, changed_fields=form.changed_data, actor=request.user.get_username())

    def get_urls(self):
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name="members_member_import"),
            *super().get_urls(),
        ]

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a roster CSV, see the dry-run report, then confirm: the same import as the command."""
        if not request.user.has_perm("members.import_roster"):
            raise PermissionDenied
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "title": "Import the roster"}
        if request.method == "POST" and "confirm" in request.POST:
            return self._confirm(request, context)
        form = RosterUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            token = uuid.uuid4().hex
            stored = _upload_path(token)
            stored.parent.mkdir(parents=True, exist_ok=True)
            with stored.open("wb") as out:
                for chunk in form.cleaned_data["file"].chunks():
                    out.write(chunk)
            try:
                with stored.open("rb") as handle:
                    report = import_roster(stream=handle, dry_run=True, actor=request.user.get_username())
            except RosterFileError as exc:
                stored.unlink(missing_ok=True)
                form.add_error("file", str(exc))
            else:
                if not report.ok:
                    stored.unlink(missing_ok=True)
                context.update(
                    report=report,
                    token=token,
                    file_name=form.cleaned_data["file"].name,
                    errors_shown=report.errors[:REPORT_ERRORS_SHOWN],
                )
                return TemplateResponse(request, "admin/members/member/import_report.html", context)
        context["form"] = form
        return TemplateResponse(request, "admin/members/member/import_upload.html", context)

    def _confirm(self, request: HttpRequest, context: dict) -> HttpResponse:
        token = request.POST.get("token", "")
        stored = _upload_path(token) if _TOKEN.fullmatch(token) else None
        if stored is None or not stored.exists():
            messages.error(request, "That upload is no longer waiting; upload the file again.")
            return HttpResponseRedirect(reverse("admin:members_member_import"))
        with stored.open("rb") as handle:
            report = import_roster(stream=handle, actor=request.user.get_username())
        stored.unlink(missing_ok=True)
        if report.sha256 != request.POST.get("sha256"):
            # Cannot happen unless the stored file changed; the import ran on what was stored.
            messages.warning(request, "The imported file differs from the one checked.")
        if report.ok:
            messages.success(request, report.summary())
            return HttpResponseRedirect(reverse("admin:members_member_changelist"))
        context.update(report=report, errors_shown=report.errors[:REPORT_ERRORS_SHOWN])
        return TemplateResponse(request, "admin/members/member/import_report.html", context)


def _upload_path(token: str) -> Path:
    return Path(settings.ROSTER_UPLOAD_DIR) / f"{token}.csv"
