"""The officials' admin for elections: definitions, stations with their live reconciliation, device
tokens (issued once, revocable), the electorate, and paper returns awaiting the committee."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from ballots.models import (
    Candidate,
    Election,
    Elector,
    ReturnResolution,
    Round,
    Seal,
    Station,
    StationReturn,
    StationRound,
    StationToken,
    Tally,
)
from ballots.services import count, setup
from ballots.services.station import resolve_return
from config.errors import DomainError


class ReadOnlyMixin:
    """Rows written only by the services (and, for append-only tables, refused by the database)."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class CandidateInline(ReadOnlyMixin, admin.TabularInline):
    model = Candidate
    fields = ["position", "code", "name"]
    readonly_fields = fields


class RoundInline(admin.TabularInline):
    model = Round
    fields = ["number", "status", "opens_at", "closes_at"]
    readonly_fields = ["number", "status"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Election)
class ElectionAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "status", "roster_cutoff", "electorate_frozen_at"]
    readonly_fields = [
        "slug", "name", "roster_cutoff", "require_dues", "rule", "runoff_after_days", "certifications_required",
        "status", "electorate_frozen_at",
    ]  # fmt: skip
    fields = readonly_fields
    inlines = [CandidateInline, RoundInline]

    def has_add_permission(self, request) -> bool:
        return False  # elections come from their file: manage.py load_election

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Station)
class StationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["code", "name", "election", "mode", "served", "checkins", "ballots", "closed"]
    list_filter = ["election", "mode"]
    search_fields = ["code", "name"]
    fields = ["election", "code", "name", "mode", "branches"]
    readonly_fields = fields

    def get_queryset(self, request):
        # The live reconciliation of each station in its latest opened round, in the same query.
        latest = StationRound.objects.filter(station=OuterRef("pk")).exclude(round__status=Round.Status.SCHEDULED)
        latest = latest.order_by("-round__number")
        return (
            super()
            .get_queryset(request)
            .select_related("election")
            .annotate(
                live_checkins=Subquery(latest.values("checkins")[:1]),
                live_ballots=Subquery(latest.values("ballots")[:1]),
                live_closed_at=Subquery(latest.values("closed_at")[:1]),
                live_round=Subquery(latest.values("round__number")[:1]),
            )
        )

    @admin.display(description="branches")
    def served(self, station: Station) -> str:
        return ", ".join(station.branches) or "all"

    @admin.display(description="check-ins")
    def checkins(self, station: Station):
        return "—" if station.live_round is None else station.live_checkins

    @admin.display(description="ballots")
    def ballots(self, station: Station):
        return "—" if station.live_round is None or station.mode == Station.Mode.PAPER else station.live_ballots

    @admin.display(description="closed", boolean=True)
    def closed(self, station: Station):
        return None if station.live_round is None else station.live_closed_at is not None


class IssueTokenForm(forms.Form):
    station = forms.ModelChoiceField(
        queryset=Station.objects.select_related("election").order_by("election", "position")
    )


@admin.register(StationToken)
class StationTokenAdmin(admin.ModelAdmin):
    list_display = ["station", "prefix", "created_at", "created_by", "revoked_at", "revoked_by"]
    list_filter = ["station__election", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["station__code", "prefix"]
    fields = ["station", "prefix", "created_at", "created_by", "revoked_at", "revoked_by"]
    readonly_fields = fields
    actions = ["revoke"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        """Issue a token: the key is shown on this page once and never again (only its hash is kept)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = IssueTokenForm(request.POST or None)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "title": "Issue a device token"}
        if request.method == "POST" and form.is_valid():
            token, key = setup.issue_station_token(
                station=form.cleaned_data["station"], actor=request.user.get_username()
            )
            context.update(token=token, key=key)
        context["form"] = form
        return TemplateResponse(request, "admin/ballots/stationtoken/issue.html", context)

    @admin.action(description="Revoke the selected tokens (at once)", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset) -> None:
        revoked = sum(setup.revoke_station_token(token=t, actor=request.user.get_username()) for t in queryset)
        self.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)


@admin.register(StationRound)
class StationRoundAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["station", "round", "checkins", "ballots", "closed_at"]
    list_filter = ["round__election", "round__number", ("closed_at", admin.EmptyFieldListFilter)]
    list_select_related = ["station", "round__election"]


class ElectorChangeForm(forms.Form):
    election = forms.ModelChoiceField(queryset=Election.objects.filter(status=Election.Status.FROZEN))
    member_no = forms.CharField(label="Member number", max_length=32)
    change = forms.ChoiceField(choices=[("add", "Add to the electorate"), ("remove", "Remove from the electorate")])
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))


@admin.register(Elector)
class ElectorAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["member_no", "election", "branch_code", "station", "removed_at"]
    list_filter = ["election", ("removed_at", admin.EmptyFieldListFilter)]
    search_fields = ["=member__member_no"]
    list_select_related = ["member", "election", "station"]
    show_full_result_count = False

    @admin.display(description="member number", ordering="member__member_no")
    def member_no(self, elector: Elector) -> str:
        return elector.member.member_no

    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("ballots.change_elector")

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        """Add or remove one member of a frozen electorate, with a reason (audited)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ElectorChangeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                setup.change_electorate(
                    election=data["election"], member_no=data["member_no"], add=data["change"] == "add",
                    reason=data["reason"], actor=request.user.get_username(),
                )  # fmt: skip
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"Member {data['member_no']}: {data['change']} done.")
                return HttpResponseRedirect(reverse("admin:ballots_elector_changelist"))
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "form": form,
            "title": "Change the electorate",
        }  # fmt: skip
        return TemplateResponse(request, "admin/ballots/form.html", context)


class AwaitingResolution(admin.SimpleListFilter):
    title = "awaiting the committee"
    parameter_name = "awaiting"

    def lookups(self, request, model_admin):
        return [("yes", "count not yet settled")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(Exists(Seal.objects.filter(round=OuterRef("round"), station=OuterRef("station"))))
        return queryset


@admin.register(StationReturn)
class StationReturnAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["station", "round", "entry", "total", "blank", "invalid", "counts", "warnings", "entered_by"]
    list_filter = [AwaitingResolution, "round__election", "round__number"]
    list_select_related = ["station", "round__election"]


class ResolveForm(forms.Form):
    round = forms.ModelChoiceField(queryset=Round.objects.select_related("election"))
    station = forms.ModelChoiceField(queryset=Station.objects.filter(mode=Station.Mode.PAPER))
    counts = forms.JSONField(help_text='Votes per candidate code, e.g. {"yachimovich": 120, "peretz": 98}')
    blank = forms.IntegerField(min_value=0)
    invalid = forms.IntegerField(min_value=0)
    total = forms.IntegerField(min_value=0)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))


@admin.register(ReturnResolution)
class ReturnResolutionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["station", "round", "total", "resolved_by", "created_at"]
    list_select_related = ["station", "round__election"]

    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("ballots.add_returnresolution")

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        """Settle a paper station whose two entries differ: the figures that count, and why."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ResolveForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                resolve_return(
                    round_=data["round"], station=data["station"], counts=data["counts"], blank=data["blank"],
                    invalid=data["invalid"], total=data["total"], reason=data["reason"],
                    actor=request.user.get_username(),
                )  # fmt: skip
            except DomainError as exc:
                details = exc.extra.get("errors", [])
                form.add_error(None, " ".join([exc.message, *(f"{e['code']}: {e['message']}" for e in details)]))
            else:
                messages.success(request, f"The count of {data['station'].code} is settled.")
                return HttpResponseRedirect(reverse("admin:ballots_returnresolution_changelist"))
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "form": form,
            "title": "Resolve differing returns",
        }  # fmt: skip
        return TemplateResponse(request, "admin/ballots/form.html", context)


@admin.register(Seal)
class SealAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["station", "round", "checkins", "ballots", "source", "ballots_root", "created_at"]
    list_filter = ["round__election", "source"]
    list_select_related = ["station", "round__election"]


@admin.register(Round)
class RoundAdmin(admin.ModelAdmin):
    """Rounds: their latest tally and its approvals; the committee certifies here, and moves a round
    that has not opened (the runoff's dates)."""

    list_display = ["__str__", "status", "opens_at", "closes_at", "latest_tally", "approvals", "certified_at"]
    list_filter = ["election", "status"]
    fields = ["election", "number", "status", "opens_at", "closes_at", "certified_at", "tie_break_seed"]
    actions = ["certify"]

    def get_readonly_fields(self, request, obj=None):
        fixed = ["election", "number", "status", "certified_at", "tie_break_seed"]
        if obj is not None and obj.status != Round.Status.SCHEDULED:
            fixed += ["opens_at", "closes_at"]
        return fixed

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        try:
            count.reschedule_round(
                round_=obj, opens_at=obj.opens_at, closes_at=obj.closes_at, actor=request.user.get_username()
            )
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)

    @admin.display(description="latest tally")
    def latest_tally(self, round_: Round) -> str:
        tally = round_.tallies.order_by("-number").first()
        return "—" if tally is None else f"{tally.number}: {tally.decision}"

    @admin.display(description="approvals")
    def approvals(self, round_: Round) -> str:
        tally = round_.tallies.order_by("-number").first()
        if tally is None:
            return "—"
        return f"{tally.certifications.count()} of {round_.election.certifications_required}"

    @admin.action(description="Approve the latest tally (certify)", permissions=["change"])
    def certify(self, request: HttpRequest, queryset) -> None:
        for round_ in queryset.select_related("election"):
            try:
                _, approvals, certified = count.certify_round(
                    election=round_.election, number=round_.number, username=request.user.get_username()
                )
            except DomainError as exc:
                self.message_user(request, f"{round_}: {exc.message}", messages.ERROR)
                continue
            required = round_.election.certifications_required
            state = "certified" if certified else "approved"
            self.message_user(request, f"{round_}: {state} ({approvals} of {required}).", messages.SUCCESS)


@admin.register(Tally)
class TallyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["round", "number", "decision", "complete", "sha256", "created_at", "created_by"]
    list_filter = ["round__election", "decision"]
    fields = ["round", "number", "decision", "complete", "sha256", "created_at", "created_by", "document"]
    readonly_fields = fields
