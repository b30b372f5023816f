"""Elections and their day: candidates, stations and device tokens, rounds, the electorate,
check-ins, secret ballots, station returns and seals.

Check-ins, ballots, returns, resolutions and seals are append-only (database triggers). A ballot has
no member, no timestamp and no sequential id: its id is the station's random UUIDv4.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from members.models import Member

CHOICE_BLANK = "blank"
CHOICE_INVALID = "invalid"
SPECIAL_CHOICES = (CHOICE_BLANK, CHOICE_INVALID)


class Election(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"  # definition can still change
        FROZEN = "frozen"  # electorate frozen: the definition is fixed

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    roster_cutoff = models.DateField()
    require_dues = models.BooleanField(default=False)
    # The counting rule as in the election file (method, threshold_percent, threshold_base,
    # quorum_percent, advance, tie_break); validated by ballots.election_file.
    rule = models.JSONField()
    runoff_after_days = models.PositiveIntegerField(default=7)
    certifications_required = models.PositiveIntegerField(default=2)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    electorate_frozen_at = models.DateTimeField(null=True, blank=True)
    # The election file as loaded, canonical JSON, for the record.
    definition = models.JSONField()

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


class Candidate(models.Model):
    election = models.ForeignKey(Election, on_delete=models.CASCADE, related_name="candidates")
    code = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["election", "position"]
        constraints = [
            models.UniqueConstraint(fields=["election", "code"], name="candidate_code_unique"),
            models.CheckConstraint(condition=~Q(code__in=SPECIAL_CHOICES), name="candidate_code_not_special"),
        ]

    def __str__(self) -> str:
        return self.name


class Station(models.Model):
    class Mode(models.TextChoices):
        ELECTRONIC = "electronic"
        PAPER = "paper"

    election = models.ForeignKey(Election, on_delete=models.CASCADE, related_name="stations")
    code = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    mode = models.CharField(max_length=16, choices=Mode.choices)
    # Branch codes served; empty serves every branch. Order in the file decides "the member's station".
    branches = models.JSONField(default=list, blank=True)
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["election", "position"]
        constraints = [models.UniqueConstraint(fields=["election", "code"], name="station_code_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def serves(self, branch_code: str) -> bool:
        return not self.branches or branch_code in self.branches


class StationToken(models.Model):
    """A device's credential. Only the SHA-256 of the key is stored; the key is shown once."""

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    # The first characters of the key, so officials can tell tokens apart without the key.
    prefix = models.CharField(max_length=8)
    created_at = models.DateTimeField()
    created_by = models.CharField(max_length=150)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["station", "created_at"]

    def __str__(self) -> str:
        return f"{self.station.code} token {self.prefix}…"

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class Round(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled"
        OPEN = "open"
        CLOSED = "closed"

    election = models.ForeignKey(Election, on_delete=models.CASCADE, related_name="rounds")
    number = models.PositiveIntegerField()
    opens_at = models.DateTimeField()
    closes_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    # The candidates on this round's ballot: all of them in round one, those advancing in a runoff.
    candidates = models.ManyToManyField(Candidate, related_name="rounds")
    # Committed to the audit log when the round closes, before any count: it draws lots on a tie.
    tie_break_seed = models.CharField(max_length=64, blank=True, default="")
    certified_tally = models.OneToOneField(
        "Tally", null=True, blank=True, on_delete=models.PROTECT, related_name="certified_round"
    )
    certified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["election", "number"]
        constraints = [
            models.UniqueConstraint(fields=["election", "number"], name="round_number_unique"),
            models.UniqueConstraint(fields=["election"], condition=Q(status="open"), name="one_open_round"),
        ]

    def __str__(self) -> str:
        return f"{self.election.slug} round {self.number}"


class Elector(models.Model):
    """A member of the frozen electorate of an election, with the station that serves their branch."""

    election = models.ForeignKey(Election, on_delete=models.PROTECT, related_name="electors")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    # The member's branch when the electorate was frozen: later roster changes do not move a voter.
    branch_code = models.CharField(max_length=64)
    # The member's station (DESIGN.md): the first serving their branch, else the first serving all.
    station = models.ForeignKey(Station, null=True, on_delete=models.PROTECT, related_name="+")
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_by = models.CharField(max_length=150, blank=True, default="")
    removal_reason = models.TextField(blank=True, default="")
    added_by = models.CharField(max_length=150, blank=True, default="")
    addition_reason = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["election", "member"], name="elector_unique")]

    def __str__(self) -> str:
        return f"{self.member.member_no} in {self.election.slug}"


class StationRound(models.Model):
    """A station in a round: whether it is closed, and its running counts.

    The counters move in the same transaction as the check-in or ballot they count, by a conditional
    UPDATE, which is what keeps ballots <= check-ins under concurrency.
    """

    round = models.ForeignKey(Round, on_delete=models.PROTECT, related_name="station_rounds")
    station = models.ForeignKey(Station, on_delete=models.PROTECT, related_name="station_rounds")
    checkins = models.PositiveIntegerField(default=0)
    ballots = models.PositiveIntegerField(default=0)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["round", "station"], name="station_round_unique"),
            models.CheckConstraint(condition=Q(ballots__lte=models.F("checkins")), name="ballots_within_checkins"),
        ]

    def __str__(self) -> str:
        return f"{self.station.code} in round {self.round.number}"


class CheckIn(models.Model):
    """A member came to vote in a round. The unique constraint is invariant 1: one vote per round."""

    # No index of its own: the unique (round, member) serves every lookup by round, and each check-in
    # wrote one more index entry for it (migration ballots 0009).
    round = models.ForeignKey(Round, on_delete=models.PROTECT, related_name="checkins", db_index=False)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    station = models.ForeignKey(Station, on_delete=models.PROTECT, related_name="checkins")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["round", "member"], name="one_checkin_per_round")]

    def __str__(self) -> str:
        return f"check-in {self.pk}"


class Ballot(models.Model):
    """A secret ballot: the station's UUIDv4, the round, the station and the choice. Nothing else.

    Rows come here when their station closes, from `OpenBallot`, in the order of their random ids.
    """

    id = models.UUIDField(primary_key=True)
    round = models.ForeignKey(Round, on_delete=models.PROTECT, related_name="ballots")
    station = models.ForeignKey(Station, on_delete=models.PROTECT, related_name="ballots")
    # A candidate code of the round, "blank" or "invalid".
    choice = models.CharField(max_length=64)

    def __str__(self) -> str:
        return "ballot"


class OpenBallot(models.Model):
    """A ballot of a station still open: the ballot box during polling. Same columns as `Ballot`.

    A table keeps rows in the order they arrive (PostgreSQL's heap and every row's xmin do), and that
    order, next to the check-ins', would link each voter to a choice. So a ballot waits here only
    while its station is open; the station's close moves its ballots to `Ballot` in the order of
    their random ids, in one transaction (one xmin for all), and deletes them here. On SQLite both
    tables are WITHOUT ROWID: kept in id order from the start.
    """

    id = models.UUIDField(primary_key=True)
    # One index for the box of a station in a round, which its close reads and empties, instead of one
    # per column: a ballot writes one index entry fewer (migration ballots 0009).
    round = models.ForeignKey(Round, on_delete=models.PROTECT, related_name="+", db_index=False)
    station = models.ForeignKey(Station, on_delete=models.PROTECT, related_name="+", db_index=False)
    choice = models.CharField(max_length=64)

    class Meta:
        indexes = [models.Index(fields=["round", "station"], name="open_ballot_box")]

    def __str__(self) -> str:
        return "ballot"


class StationReturn(models.Model):
    """One of the two independent entries of a paper station's count."""

    round = models.ForeignKey(Round, on_delete=models.PROTECT, related_name="returns")
    station = models.ForeignKey(Station, on_delete=models.PROTECT, related_name="returns")
    entry = models.PositiveSmallIntegerField(choices=[(1, "entry 1"), (2, "entry 2")])
    counts = models.JSONField()  # {candidate code: votes}
    blank = models.PositiveIntegerField()
    invalid = models.PositiveIntegerField()
    total = models.PositiveIntegerField()
    warnings = models.JSONField(default=list)
    entered_by = models.CharField(max_length=150)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["round", "station", "entry"], name="one_return_per_entry")]

    def __str__(self) -> str:
        return f"{self.station.code} round {self.round.number} entry {self.entry}"

    def figures(self) -> dict:
        return {"counts": self.counts, "blank": self.blank, "invalid": self.invalid, "total": self.total}


class ReturnResolution(models.Model):
    """The committee's decision on two differing entries: the figures that count, and why."""

    round = models.ForeignKey(Round, on_delete=models.PROTECT, related_name="return_resolutions")
    station = models.ForeignKey(Station, on_delete=models.PROTECT, related_name="return_resolutions")
    counts = models.JSONField()
    blank = models.PositiveIntegerField()
    invalid = models.PositiveIntegerField()
    total = models.PositiveIntegerField()
    reason = models.TextField()
    resolved_by = models.CharField(max_length=150)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["round", "station"], name="one_resolution_per_station")]

    def __str__(self) -> str:
        return f"resolution for {self.station.code} round {self.round.number}"

    def figures(self) -> dict:
        return {"counts": self.counts, "blank": self.blank, "invalid": self.invalid, "total": self.total}


class Seal(models.Model):
    """What a station's count is, fixed: counts per choice and, for an electronic station, the Merkle
    root of its ballots sorted by id. Written when an electronic station closes, and when a paper
    station's return is accepted."""

    round = models.ForeignKey(Round, on_delete=models.PROTECT, related_name="seals")
    station = models.ForeignKey(Station, on_delete=models.PROTECT, related_name="seals")
    checkins = models.PositiveIntegerField()
    ballots = models.PositiveIntegerField()  # ballots counted (electronic: recorded; paper: the return's total)
    counts = models.JSONField()  # {candidate code | "blank" | "invalid": n}
    ballots_root = models.CharField(max_length=64, blank=True, default="")  # hex; electronic stations only
    source = models.CharField(max_length=16)  # "ballots", "return" or "resolution"
    created_at = models.DateTimeField()
    # The seal's own audit entry: a tally names the checkpoint covering its last input by it.
    entry = models.OneToOneField("audit.Entry", null=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["round", "station"], name="one_seal_per_station")]

    def __str__(self) -> str:
        return f"seal of {self.station.code} round {self.round.number}"


class Tally(models.Model):
    """A count of a round: its results document (without the publication's fields) and its SHA-256.

    Append-only: a new tally (more stations reported, a correction) is a new row with the next number.
    """

    round = models.ForeignKey(Round, on_delete=models.PROTECT, related_name="tallies")
    number = models.PositiveIntegerField()
    document = models.JSONField()
    sha256 = models.CharField(max_length=64)
    complete = models.BooleanField()  # every station reported and the round closed
    decision = models.CharField(max_length=16)
    created_at = models.DateTimeField()
    created_by = models.CharField(max_length=150)

    class Meta:
        ordering = ["round", "number"]
        constraints = [models.UniqueConstraint(fields=["round", "number"], name="tally_number_unique")]

    def __str__(self) -> str:
        return f"{self.round} tally {self.number}"


class Certification(models.Model):
    """One committee member's approval of one tally. The round is certified when enough distinct
    members have approved its latest tally."""

    tally = models.ForeignKey(Tally, on_delete=models.PROTECT, related_name="certifications")
    username = models.CharField(max_length=150)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tally", "username"], name="one_approval_per_member")]

    def __str__(self) -> str:
        return f"{self.username} approved {self.tally}"


class Publication(models.Model):
    """One published version of a round's results: the signed document, its CSV and its page.

    Append-only. Pages and open data are served from these rows, never from live queries, so what the
    public reads is exactly what was signed and logged. Versions number 1, 2, ... per round; a tally is
    published at most once as provisional and once as official.
    """

    class Status(models.TextChoices):
        PROVISIONAL = "provisional"
        OFFICIAL = "official"

    round = models.ForeignKey(Round, on_delete=models.PROTECT, related_name="publications")
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices)
    tally = models.ForeignKey(Tally, on_delete=models.PROTECT, related_name="publications")
    # The results document as served: canonical JSON with its sha256 and signature (DESIGN.md).
    document = models.TextField()
    csv = models.TextField()
    page = models.TextField()  # the rendered HTML page, self-contained
    sha256 = models.CharField(max_length=64)
    signature = models.CharField(max_length=128)  # base64 Ed25519 over the document's canonical bytes
    checkpoint = models.ForeignKey("audit.Checkpoint", on_delete=models.PROTECT, related_name="+")
    published_at = models.DateTimeField()
    published_by = models.CharField(max_length=150)
    entry = models.OneToOneField("audit.Entry", on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["round", "version"]
        constraints = [
            models.UniqueConstraint(fields=["round", "version"], name="publication_version_unique"),
            models.UniqueConstraint(fields=["tally", "status"], name="publication_once_per_tally"),
        ]

    def __str__(self) -> str:
        return f"{self.round} version {self.version} ({self.status})"
