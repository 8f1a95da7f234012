import pytest
from django.db import connection

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_the_database_has_the_pgvector_extension():
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        (version,) = cursor.fetchone()
        cursor.execute("SELECT '[1,2,3]'::vector <-> '[1,2,5]'::vector")
        (distance,) = cursor.fetchone()
    assert version >= "0.8"
    assert distance == 2.0
