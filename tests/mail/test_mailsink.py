"""`manage.py mailsink`: the embedded default's local SMTP server prints and keeps what it gets."""

import os
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

from tests.support.servers import ROOT, free_port


def test_mailsink_prints_and_keeps_each_message(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "MESHSITE_VAR_DIR": str(tmp_path),
        "DATABASE_URL": "",
        "REDIS_URL": "",
        "PYTHONUNBUFFERED": "1",
    }
    sink = subprocess.Popen(
        [sys.executable, "manage.py", "mailsink", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "bot@meshsite.localhost", "bob@example.org", "Re: Hi"
        message["Message-ID"], message["In-Reply-To"] = "<r1@meshsite.localhost>", "<q1@example.org>"
        message.set_content("Grüße!")
        deadline = time.monotonic() + 30
        while True:
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
                    smtp.send_message(message)
                break
            except OSError:
                assert time.monotonic() < deadline, "mailsink did not start"
                time.sleep(0.2)
        kept = tmp_path / "mailsink" / "1.eml"
        while not kept.exists():
            assert time.monotonic() < deadline, "mailsink kept nothing"
            time.sleep(0.1)
        assert b"Subject: Re: Hi" in kept.read_bytes()
    finally:
        sink.terminate()
        output, _ = sink.communicate(timeout=15)
    assert "--- #1 from bot@meshsite.localhost to bob@example.org" in output
    assert "In-Reply-To: <q1@example.org>" in output and "Grüße!" in output
