import pytest
from django.conf import settings as django_settings
from django.core.files.storage import FileSystemStorage

from files.models import StoredFile
from rooms.actions.rooms import do_create_room
from rooms.models import Project, Room


@pytest.fixture(autouse=True)
def blob_folder(settings, tmp_path):
    """Blobs written in this process go to a folder of the test's own (server processes keep
    theirs), so counting a room's blobs counts only this test's."""
    files = {**settings.STORAGES["files"], "OPTIONS": {"location": str(tmp_path / "files")}}
    settings.STORAGES = {**settings.STORAGES, "files": files}
    return tmp_path / "files"


@pytest.fixture
def room(project: Project) -> Room:
    return do_create_room(project, "lobby")


@pytest.fixture
def server_blobs_removed(transactional_db: None):
    """Removes the blobs a server process wrote for this test (in the configured folder, which
    server processes share), before the test database is flushed."""
    yield
    server_storage = FileSystemStorage(location=django_settings.MESHSITE_STORAGE_DIR)
    for name in StoredFile.objects.exclude(blob_name="").values_list("blob_name", flat=True):
        server_storage.delete(name)
