"""App configuration for audit."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate

AUDITOR_GROUP = "auditor"


def grant_auditors_every_view(sender, using="default", **kwargs) -> None:
    """Auditors read everything: every model's view permission, including models added later."""
    from django.contrib.auth.models import Group, Permission

    group = Group.objects.using(using).filter(name=AUDITOR_GROUP).first()
    if group is not None:
        group.permissions.add(*Permission.objects.using(using).filter(codename__startswith="view_"))


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        post_migrate.connect(grant_auditors_every_view, sender=self)
