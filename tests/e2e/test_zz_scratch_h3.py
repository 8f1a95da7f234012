import asyncio, subprocess, sys, statistics
import pytest
from django.conf import settings
from tests.support.peer import RawPeer
from tests.support.servers import ServerProcess
from tests.support.witness import ping_watch
from tests.e2e.test_hostile_schemas import exponential_schema, tool

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

@pytest.fixture(scope="module")
def srv(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        p = ServerProcess(redis_url=settings.REDIS_URL or None, env={"MESHSITE_SCHEMA_SECONDS": "3"}).start()
    yield p
    p.stop()

def summary(name, w):
    r = sorted(w.rtts)
    print(f"\n{name}: n={len(r)} median={statistics.median(r)*1000:.1f} p90={r[int(len(r)*0.9)]*1000:.1f} max={r[-1]*1000:.1f} over100={sum(x>0.1 for x in r)} over50={sum(x>0.05 for x in r)}")

async def test_scratch(srv, mint):
    room = "scratch"
    url = srv.ws_url(room)
    async with (
        await RawPeer.connect(url, mint("host", room=room)) as host,
        await RawPeer.connect(url, mint("mallory", room=room)) as mallory,
        await RawPeer.connect(url, mint("witness", room=room)) as witness,
    ):
        await host.register("blowup", [tool(exponential_schema(30))])
        async with ping_watch(witness) as w:
            await asyncio.sleep(3)
        summary("idle", w)
        burner = subprocess.Popen([sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<3: pass"])
        async with ping_watch(witness) as w:
            await asyncio.sleep(3)
        burner.wait()
        summary("cpu burner process", w)
        async with ping_watch(witness) as w:
            r = await mallory.invoke("blowup", "check", {"x": "x"})
        print(r.get("error", {}).get("code"))
        summary("exponential 3s", w)
