"""The officials' admin for elections: definitions, stations with their live reconciliation, device
tokens (issued once, revocable), the electorate, paper returns awaiting the committee, the committee's
workflows (each an action with a confirmation page, calling its service) and the election-day dashboard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from ballots import selectors
from ballots.models import (
    Candidate,
    Election,
    Elector,
    Publication,
    ReturnResolution,
    Round,
    Seal,
    Station,
    StationReturn,
    StationRound,
    StationToken,
    Tally,
)
from ballots.services import count, publish, setup
from ballots.services.station import resolve_return
from config.errors import DomainError
from members.selectors import eligible_members

# The dashboard is about stations on the day: the committee, the station managers and the auditors
# hold this permission; the paper returns on it are shown only to those who may read returns.
DASHBOARD_PERMISSION = "ballots.view_stationround"


class ReadOnlyMixin:
    """Rows written only by the services (and, for append-only tables, refused by the database)."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def confirmed(request: HttpRequest) -> bool:
    """The confirmation page was submitted (as Django's delete confirmation does it)."""
    return request.POST.get("post") == "yes"


def confirmation(
    model_admin: admin.ModelAdmin, request: HttpRequest, queryset, *, action: str, title: str, button: str,
    summaries: list[tuple[Any, list[str]]], form: forms.Form | None = None,
) -> TemplateResponse:  # fmt: skip
    """The page between choosing a workflow and doing it: what will happen to each selected object."""
    context = {
        **model_admin.admin_site.each_context(request), "opts": model_admin.model._meta, "title": title,
        "queryset": queryset, "action": action, "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "summaries": summaries, "button": button, "form": form,
    }  # fmt: skip
    return TemplateResponse(request, "admin/ballots/confirm_action.html", context)


def apply(request: HttpRequest, objects, do: Callable[[Any], str]) -> None:
    """Run a service on each object: its outcome as a success, or its refusal (nothing written) as an error."""
    for obj in objects:
        try:
            done = do(obj)
        except DomainError as exc:
            messages.error(request, f"{obj}: {exc.message}")
        else:
            messages.success(request, f"{obj}: {done}")


def _when(moment) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"


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
    actions = ["freeze_electorate"]

    def has_add_permission(self, request) -> bool:
        return False  # elections come from their file: manage.py load_election

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        # Before the default URLs: their "<path:object_id>/" would take "3/dashboard/" too.
        view = self.admin_site.admin_view
        return [
            path("dashboard/", view(self.dashboards_view), name="ballots_election_dashboards"),
            path("<int:object_id>/dashboard/", view(self.dashboard_view), name="ballots_election_dashboard"),
            *super().get_urls(),
        ]

    def dashboards_view(self, request: HttpRequest) -> HttpResponse:
        """The elections, each with its election-day dashboard (the admin index links here)."""
        if not request.user.has_perm(DASHBOARD_PERMISSION):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": "Election day",
            "elections": Election.objects.all(),
        }  # fmt: skip
        return TemplateResponse(request, "admin/ballots/election/dashboards.html", context)

    def dashboard_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """The current round at a glance: turnout by station and by hour, stations still open or not
        reported, and the paper returns' warnings and differences awaiting the committee."""
        if not request.user.has_perm(DASHBOARD_PERMISSION):
            raise PermissionDenied
        election = get_object_or_404(Election, pk=object_id)
        day = selectors.election_day(election, with_returns=request.user.has_perm("ballots.view_stationreturn"))
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta,
            "title": f"Election day: {election.name}", "election": election, "day": day, "now": timezone.now(),
        }  # fmt: skip
        return TemplateResponse(request, "admin/ballots/election/dashboard.html", context)

    @admin.action(description="Freeze the electorate…", permissions=["change"])
    def freeze_electorate(self, request: HttpRequest, queryset) -> HttpResponse | None:
        if confirmed(request):

            def freeze(election: Election) -> str:
                size = setup.freeze_electorate(election=election, actor=request.user.get_username())
                return f"electorate frozen, {size} members."

            apply(request, queryset, freeze)
            return None
        summaries = [(election, self._freeze_summary(election)) for election in queryset]
        return confirmation(
            self, request, queryset, action="freeze_electorate", title="Freeze the electorate",
            button="Yes, freeze the electorate", summaries=summaries,
        )  # fmt: skip

    @staticmethod
    def _freeze_summary(election: Election) -> list[str]:
        if election.status != Election.Status.DRAFT:
            return [f"Already frozen on {_when(election.electorate_frozen_at)}: nothing to do."]
        eligible = eligible_members(cutoff=election.roster_cutoff, require_dues=election.require_dues).count()
        dues = "dues paid through the cutoff required" if election.require_dues else "dues not required"
        return [
            f"Roster cutoff {election.roster_cutoff:%Y-%m-%d}, {dues}.",
            f"{eligible} members of the roster are eligible now and become the electorate.",
            "Afterwards the election's definition is fixed, and roster changes no longer change who may vote "
            "(the committee adds or removes a member with a reason).",
        ]


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
        # The dashboard links here with the round and the station filled in.
        form = ResolveForm(request.POST or None, initial=request.GET.dict())
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


class RoundDatesForm(forms.Form):
    # The browser's own date-time picker: no JavaScript needed, and usable on a phone.
    opens_at = forms.DateTimeField(
        label="Opens at", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
    )
    closes_at = forms.DateTimeField(
        label="Closes at", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
    )


@admin.register(Round)
class RoundAdmin(admin.ModelAdmin):
    """Rounds: their latest tally and its approvals. The committee opens and closes rounds, certifies,
    and moves a round that has not opened (the runoff's dates), each after a confirmation page."""

    list_display = ["__str__", "status", "opens_at", "closes_at", "latest_tally", "approvals", "certified_at"]
    list_filter = ["election", "status"]
    fields = ["election", "number", "status", "opens_at", "closes_at", "certified_at", "tie_break_seed"]
    actions = ["open_round", "close_round", "certify", "publish", "set_dates"]

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
        # Only a change of the dates is a reschedule: saving the page as it is writes nothing.
        if not {"opens_at", "closes_at"} & set(form.changed_data):
            return
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

    @admin.action(description="Open the round…", permissions=["change"])
    def open_round(self, request: HttpRequest, queryset) -> HttpResponse | None:
        queryset = queryset.select_related("election")
        if confirmed(request):

            def open_one(round_: Round) -> str:
                setup.open_round(election=round_.election, number=round_.number, actor=request.user.get_username())
                return "opened."

            apply(request, queryset, open_one)
            return None
        summaries = []
        for round_ in queryset:
            candidates = list(round_.candidates.all()) or list(round_.election.candidates.all())
            electorate = round_.election.electors.filter(removed_at__isnull=True).count()
            summaries.append((round_, [
                f"Status now: {round_.status}; scheduled {_when(round_.opens_at)} to {_when(round_.closes_at)}.",
                f"On the ballot: {', '.join(c.name for c in candidates)}.",
                f"Electorate: {electorate} members; {round_.election.stations.count()} stations.",
                "From now on the stations check voters in and take ballots, until the round is closed.",
            ]))  # fmt: skip
        return confirmation(
            self, request, queryset, action="open_round", title="Open the round", button="Yes, open it",
            summaries=summaries,
        )  # fmt: skip

    @admin.action(description="Close the round…", permissions=["change"])
    def close_round(self, request: HttpRequest, queryset) -> HttpResponse | None:
        queryset = queryset.select_related("election")
        if confirmed(request):

            def close_one(round_: Round) -> str:
                setup.close_round(election=round_.election, number=round_.number, actor=request.user.get_username())
                return "closed."

            apply(request, queryset, close_one)
            return None
        summaries = []
        for round_ in queryset:
            station_rounds = list(round_.station_rounds.select_related("station").order_by("station__position"))
            still_open = [sr.station.code for sr in station_rounds if sr.closed_at is None]
            summaries.append((round_, [
                f"Status now: {round_.status}; scheduled to close {_when(round_.closes_at)}.",
                f"So far {sum(sr.checkins for sr in station_rounds)} check-ins and "
                f"{sum(sr.ballots for sr in station_rounds)} electronic ballots at {len(station_rounds)} stations.",
                f"Closed now, and sealed if electronic: {', '.join(still_open) or 'none (all closed already)'}.",
                "No check-in or ballot is taken afterwards; paper stations then report their returns. "
                "The tie-break seed is drawn and logged.",
            ]))  # fmt: skip
        return confirmation(
            self, request, queryset, action="close_round", title="Close the round", button="Yes, close it",
            summaries=summaries,
        )  # fmt: skip

    @admin.action(description="Approve the latest tally (certify)…", permissions=["change"])
    def certify(self, request: HttpRequest, queryset) -> HttpResponse | None:
        queryset = queryset.select_related("election")
        username = request.user.get_username()
        if confirmed(request):
            apply(request, queryset, lambda r: self._certify(r, username))
            return None
        summaries = [(round_, self._tally_summary(round_, username)) for round_ in queryset]
        return confirmation(
            self, request, queryset, action="certify", title="Approve the latest tally",
            button=f"Yes, I approve ({username})", summaries=summaries,
        )  # fmt: skip

    @staticmethod
    def _certify(round_: Round, username: str) -> str:
        _, approvals, certified = count.certify_round(election=round_.election, number=round_.number, username=username)
        state = "certified" if certified else "approved"
        return f"{state} ({approvals} of {round_.election.certifications_required})."

    @staticmethod
    def _tally_summary(round_: Round, username: str) -> list[str]:
        tally = round_.tallies.order_by("-number").first()
        if tally is None:
            return ["No tally yet: nothing to approve."]
        document = tally.document
        stations = document["stations"]
        approved_by = list(tally.certifications.values_list("username", flat=True))
        required = round_.election.certifications_required
        return [
            f"Tally {tally.number} of {_when(tally.created_at)}: decision {tally.decision}, "
            f"{'complete' if tally.complete else 'NOT complete'} ({stations['reported']} of {stations['total']} "
            "stations reported).",
            *(f"{c['name']}: {c['votes']} votes ({c['percent']}%)" for c in document["candidates"]),
            f"SHA-256 {tally.sha256}",
            f"Approved so far by {', '.join(approved_by) or 'nobody'} ({len(approved_by)} of {required}); "
            f"you approve as {username}, once.",
        ]

    @admin.action(description="Publish the results now…", permissions=["change"])
    def publish(self, request: HttpRequest, queryset) -> HttpResponse | None:
        """Provisional results of a round being counted, or the official ones of a certified round.

        Publication runs by itself (stations reporting, the minute's beat, certification); this is the
        committee's own push, done here and now rather than queued. Publishing what is out writes nothing.
        """
        queryset = queryset.select_related("election")
        if confirmed(request):
            actor = request.user.get_username()

            def publish_one(round_: Round) -> str:
                if round_.certified_tally_id is not None:
                    publication = publish.publish_official(round_id=round_.id, actor=actor)
                else:
                    publication = publish.publish_provisional(round_id=round_.id, actor=actor)
                if publication is None:
                    return "nothing to publish: the round has not opened."
                return f"version {publication.version} ({publication.status}) is out, sha256 {publication.sha256}."

            apply(request, queryset, publish_one)
            return None
        summaries = []
        for round_ in queryset:
            latest = round_.publications.order_by("-version").first()
            out = "nothing yet"
            if latest is not None:
                out = f"version {latest.version} ({latest.status}) of {_when(latest.published_at)}"
            kind = "provisional results, tallied now"
            if round_.certified_tally_id:
                kind = "the official results (certified)"
            summaries.append((round_, [
                f"Published so far: {out}.",
                f"Publishes {kind}; a signed, permanent version on the public page, unless it is already out.",
            ]))  # fmt: skip
        return confirmation(
            self, request, queryset, action="publish", title="Publish the results", button="Yes, publish",
            summaries=summaries,
        )  # fmt: skip

    @admin.action(description="Set the round's dates (the runoff's)…", permissions=["change"])
    def set_dates(self, request: HttpRequest, queryset) -> HttpResponse | None:
        if queryset.count() != 1:
            messages.error(request, "Select one round to set its dates.")
            return None
        round_ = queryset.select_related("election").get()
        form = RoundDatesForm(
            request.POST if confirmed(request) else None,
            initial={"opens_at": round_.opens_at, "closes_at": round_.closes_at},
        )
        if form.is_valid():
            opens_at, closes_at = form.cleaned_data["opens_at"], form.cleaned_data["closes_at"]

            def move(round_: Round) -> str:
                count.reschedule_round(
                    round_=round_, opens_at=opens_at, closes_at=closes_at, actor=request.user.get_username()
                )
                return f"now {_when(opens_at)} to {_when(closes_at)}."

            apply(request, [round_], move)
            return None
        summary = [
            f"Status now: {round_.status}; scheduled {_when(round_.opens_at)} to {_when(round_.closes_at)}.",
            "Only a round that has not opened can be moved.",
        ]
        return confirmation(
            self, request, queryset, action="set_dates", title="Set the round's dates", button="Set the dates",
            summaries=[(round_, summary)], form=form,
        )  # fmt: skip


@admin.register(Tally)
class TallyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["round", "number", "decision", "complete", "sha256", "created_at", "created_by"]
    list_filter = ["round__election", "decision"]
    fields = ["round", "number", "decision", "complete", "sha256", "created_at", "created_by", "document"]
    readonly_fields = fields


@admin.register(Publication)
class PublicationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Published versions, as the public reads them: read-only, like every append-only record."""

    list_display = ["round", "version", "status", "published_at", "published_by", "sha256", "public_page"]
    list_filter = ["round__election", "status"]
    fields = ["round", "version", "status", "tally", "published_at", "published_by", "sha256", "signature",
              "checkpoint", "document", "csv"]  # fmt: skip
    readonly_fields = fields

    @admin.display(description="public page")
    def public_page(self, publication: Publication) -> str:
        url = reverse("results-round", args=[publication.round.election.slug, publication.round.number])
        return format_html('<a href="{}">{}</a>', url, url)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("round__election")

