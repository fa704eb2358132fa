"""Views that send mail the way a Django project does, imported from mailpost."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils.translation import gettext_lazy as _

from mailpost import EmailMultiAlternatives, send_mail


def signup(request: HttpRequest) -> HttpResponse:
    """POST email=... sends a welcome message (send_mail, lazy subject, default From)."""
    email = request.POST.get("email", "")
    if not email:
        return HttpResponseBadRequest("email is required")
    sent = send_mail(_("Welcome to the shop"), f"Hello {email}, welcome!", None, [email])
    return HttpResponse(f"sent {sent}")


def invoice(request: HttpRequest, number: int) -> HttpResponse:
    """Sends invoice ``number`` as text + HTML with a PDF attached, through ``?using=``."""
    to = request.GET.get("to", "customer@example.com")
    msg = EmailMultiAlternatives(
        subject=f"Invoice #{number}",
        body=f"Your invoice #{number} is attached.",
        to=[to],
        cc=["accounts@example.com"],
        bcc=["archive@example.com"],
        reply_to=["billing@example.com"],
        headers={"X-Invoice": str(number)},
    )
    msg.attach_alternative(f"<p>Your invoice <b>#{number}</b> is attached.</p>", "text/html")
    pdf = b"%PDF-1.4 invoice " + str(number).encode()
    msg.attach(f"invoice-{number}.pdf", pdf, "application/pdf")
    sent = msg.send(using=request.GET.get("using"))
    return HttpResponse(f"sent {sent}")
