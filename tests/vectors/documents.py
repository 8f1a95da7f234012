"""Documents for the tests, built in code: a real PDF (hand-written objects, Helvetica text) and a
real MIME email with attachments."""

from email.message import EmailMessage


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(lines: list[str], title: str = "") -> bytes:
    """A one-page PDF whose text layer holds `lines`, one per line."""
    content = "BT /F1 11 Tf 72 740 Td 14 TL " + " ".join(f"({_pdf_escape(line)}) '" for line in lines) + " ET"
    info = f"<< /Title ({_pdf_escape(title)}) >>" if title else "<< >>"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        info,
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 6 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def make_email(subject: str, body: str, attachments: list[tuple[str, str, bytes]]) -> bytes:
    """An email with a plain-text body and (filename, content type, bytes) attachments."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = "Dana Supplier <dana@supplier.example>"
    message["To"] = "team@acme.example"
    message["Date"] = "Mon, 30 Nov 2026 09:00:00 +0000"
    message.set_content(body)
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()
