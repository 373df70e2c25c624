"""Rendering inside a Celery prefork worker: its pool processes are daemonic, and
multiprocessing refuses to let a daemonic process have children. The sandbox forks by
itself, so a render works there too (every report failed in a real worker before)."""

from __future__ import annotations

import multiprocessing

from assessments.reports.sandbox import pdf_render


def _render_in_daemon(conn) -> None:  # the body of a daemonic process, like a prefork pool child
    try:
        pdf = pdf_render("<h1>Readiness</h1><p>Rendered inside a daemonic process.</p>")
        conn.send(("ok", pdf[:5]))
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def test_a_render_inside_a_daemonic_worker_process_succeeds() -> None:
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    worker = context.Process(target=_render_in_daemon, args=(sender,), daemon=True)
    worker.start()
    sender.close()
    assert receiver.poll(60), "the daemonic process did not answer"
    outcome = receiver.recv()
    worker.join(10)
    assert outcome == ("ok", b"%PDF-"), outcome
