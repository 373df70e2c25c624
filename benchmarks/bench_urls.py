"""The app's URLs plus /bench/floor/<rows>/: a bare view rendering rows from a Python list."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template import Context, Template
from django.urls import include, path

FLOOR = Template(
    "<!doctype html><html><body><table>{% for r in rows %}<tr><th>{{ r.name }}</th><td>{{ r.stage }}</td>"
    "<td>{{ r.score }}</td><td>{{ r.blockers }}</td><td>{{ r.note }}</td></tr>{% endfor %}</table></body></html>"
)


def floor(request: HttpRequest, rows: int) -> HttpResponse:
    data = [
        {"name": f"Pilot {i}", "stage": "pilot", "score": i % 100, "blockers": i % 7, "note": "x" * 40}
        for i in range(rows)
    ]
    return HttpResponse(FLOOR.render(Context({"rows": data})))


urlpatterns = [path("bench/floor/<int:rows>/", floor), path("", include("readiness.urls"))]
