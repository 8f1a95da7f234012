"""The admin lists stored files and shows one, read-only."""

from files.actions import do_write_file
from files.models import StoredFile


def test_the_admin_lists_and_shows_stored_files_without_editing(room, admin_client):
    stored = do_write_file(room=room, path="users/bob/a.txt", content=b"hello", content_type=None, written_by="bob")
    listing = admin_client.get("/admin/files/storedfile/")
    assert listing.status_code == 200 and b"users/bob/a.txt" in listing.content
    page = admin_client.get(f"/admin/files/storedfile/{stored.pk}/change/")
    assert page.status_code == 200 and stored.sha256.encode() in page.content
    assert admin_client.get("/admin/files/storedfile/add/").status_code == 403
    assert StoredFile.objects.count() == 1
