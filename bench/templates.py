"""Templated mail: mailpost.templates.render_message against render_to_string by hand.

Both sides render the same ~7 KB Django template in the same process. The baseline is what
the production guide does: ``render_to_string`` for the HTML and
``EmailMultiAlternatives(subject, text)`` with the subject as its text. mailpost also
renders the subject block, inlines the CSS (css-inline) and generates the text part, so the
ratio is the price of that work. Prints messages/second per side and the ratio.
Run: ``python bench/templates.py`` with Django and css-inline installed
(``pip install -e ".[templates,django]"``).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROW = (
    '<tr><td class="cell">Item {{ forloop.counter }}: {{ item.name }}</td>'
    '<td class="num">{{ item.qty }}</td><td class="num">{{ item.price }} EUR</td></tr>\n'
)
TEMPLATE = (
    "{% block subject %}Your order {{ number }} has shipped{% endblock %}"
    "{% block html %}<html><head><style>\n"
    ".cell { font-family: Arial, sans-serif; padding: 4px 8px; color: #333333 }\n"
    ".num { text-align: right; padding: 4px 8px } h1 { font-size: 22px; color: #111111 }\n"
    "a { color: #0055aa } p { line-height: 1.5 }\n</style></head><body>\n"
    "<h1>Hello {{ name }}</h1><p>Your order <b>{{ number }}</b> has shipped. "
    '<a href="https://shop.example.com/orders/{{ number }}">Track it</a>.</p>\n'
    "<table>{% for item in items %}" + ROW + "{% endfor %}</table>\n"
    "<p>Thanks, the team. <a href='https://shop.example.com/unsubscribe'>Unsubscribe</a></p>"
    "</body></html>{% endblock %}"
)


def main() -> None:
    import django
    from django.conf import settings

    tmp = Path(tempfile.mkdtemp())
    (tmp / "order.html").write_text(TEMPLATE)
    settings.configure(
        TEMPLATES=[
            {"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [str(tmp)]}
        ],
        MAILERS={"default": {"BACKEND": "mailpost.backends.locmem.EmailBackend"}},
    )
    django.setup()
    from django.template.loader import render_to_string

    import mailpost
    from mailpost.templates import render_message

    items = [{"name": f"Widget model {i}", "qty": i % 5 + 1, "price": f"{i * 3}.90"}
             for i in range(62)]  # fmt: skip
    ctx = {"name": "Ann", "number": "12345", "items": items}
    size = len(render_to_string("order.html", ctx).encode())

    def baseline() -> None:
        html = render_to_string("order.html", ctx)
        subject = "Your order 12345 has shipped"
        msg = mailpost.EmailMultiAlternatives(subject, subject, "shop@example.com",
                                              ["ann@example.org"])  # fmt: skip
        msg.attach_alternative(html, "text/html")

    def templated() -> None:
        render_message("order.html", ctx, to=["ann@example.org"], from_email="shop@example.com")

    def rate(fn: Callable[[], None], n: int = 300) -> float:
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(n):
                fn()
            runs.append(n / (time.perf_counter() - start))
        return statistics.median(runs)

    templated()
    baseline()
    base, ours = rate(baseline), rate(templated)
    print(f"template HTML {size / 1024:.1f} KB, Python {sys.version.split()[0]}, "
          f"Django {django.__version__}")  # fmt: skip
    print(f"render_to_string + EmailMultiAlternatives: {base:8.0f} msg/s")
    print(f"render_message (+ CSS inline + text part): {ours:8.0f} msg/s")
    print(f"ratio (mailpost / baseline throughput):    {ours / base:8.2f}")


if __name__ == "__main__":
    main()
