from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from ..models import ApiKey, Membership, Project, hash_api_key


@transaction.atomic
def do_create_project(slug: str, name: str = "", owner: User | None = None) -> Project:
    project = Project.objects.create(slug=slug, name=name or slug)
    if owner is not None:
        Membership.objects.create(project=project, user=owner, role=Membership.Role.OWNER)
    return project


def do_create_api_key(project: Project, name: str) -> tuple[ApiKey, str]:
    """Returns the key and its raw value, which is shown once and never stored."""
    raw = ApiKey.generate_raw()
    key = ApiKey.objects.create(project=project, name=name, prefix=raw[:10], key_hash=hash_api_key(raw))
    return key, raw


def do_revoke_api_key(key: ApiKey) -> bool:
    """Revokes the key; False if it was already revoked (the first revocation time stays)."""
    return bool(ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()))


def access_api_key(raw: str) -> ApiKey | None:
    key = ApiKey.objects.active().select_related("project").filter(key_hash=hash_api_key(raw)).first()
    if key is not None:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    return key
