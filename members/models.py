"""The roster: branches and members, keyed by the party's member number."""

from django.db import models


class Branch(models.Model):
    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "branches"

    def __str__(self) -> str:
        return self.name if self.name == self.code else f"{self.name} ({self.code})"


class Member(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        SUSPENDED = "suspended"
        LAPSED = "lapsed"
        RESIGNED = "resigned"

    # The party's own identifier; the import upserts on it and every later stage refers to it. Unique
    # by a constraint rather than `unique=True`, which would add a second (LIKE-pattern) index that no
    # query uses and every import and edit would have to maintain.
    member_no = models.CharField("member number", max_length=32)
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="members")
    joined_on = models.DateField()
    status = models.CharField(max_length=16, choices=Status.choices)
    dues_paid_until = models.DateField(null=True, blank=True)
    email = models.EmailField(blank=True, default="")
    phone = models.CharField(max_length=32, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["member_no"]
        permissions = [("import_roster", "Can import the roster from a CSV file")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["active", "suspended", "lapsed", "resigned"]),
                name="member_status_known",
            ),
            models.CheckConstraint(condition=~models.Q(member_no=""), name="member_no_not_empty"),
            models.UniqueConstraint(fields=["member_no"], name="member_no_unique"),
        ]
        # No index on names or on (status, joined_on): the admin's name search is a substring match
        # and the eligibility query reads most of the roster, so PostgreSQL scans the table for both
        # (EXPLAIN on 1,000,000 members, docs/benchmarks.md); each index only slowed every import.

    def __str__(self) -> str:
        return f"{self.member_no} {self.first_name} {self.last_name}"
