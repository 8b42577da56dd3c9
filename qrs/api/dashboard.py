"""The dashboard (``/ui``): backends, jobs, sessions, one job's logs and result plot.

Server-rendered Jinja templates, no JavaScript. The dashboard shows every user's work,
so who may see it follows the server's mode:

* open mode (no API keys): anyone who can reach the server, like the API itself;
* API-key mode: only holders of an **admin** key. ``/ui/login`` exchanges the key for a
  bearer token kept in an HttpOnly, SameSite=Strict cookie; the key never appears in a
  URL or a log line, and revoking the key ends the dashboard session at once.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, g, make_response, redirect, render_template, request, url_for

from ..errors import Forbidden, InvalidInput, NotFound, Unauthorized
from ..http_guard import secure_cookies
from ..registry import get_registry
from ..states import JobStatus
from ..store import Job, JobQuery
from ..summary import summarize
from .common import iso

bp = Blueprint("dashboard", __name__)
COOKIE = "qrs_ui_token"
PAGE_SIZE = 50


@bp.before_request
def require_admin() -> Any:
    """Open mode: everyone. API-key mode: a valid admin token in the cookie, else sign in."""
    auth = get_registry().auth
    g.ui_user = None
    if request.endpoint in ("dashboard.login", "dashboard.root") or auth.open_mode:
        return None
    token = request.cookies.get(COOKIE)
    try:
        user = auth.user_for_header(f"Bearer {token}") if token else None
    except Unauthorized:
        user = None
    if user is None:
        return redirect(url_for("dashboard.login", next=request.full_path))
    if not user.admin:
        raise Forbidden(
            "The dashboard shows every user's jobs, so it needs an admin key "
            "('qrs keys create --user NAME --admin')."
        )
    g.ui_user = user
    return None


@bp.get("/")
def root():
    """The dashboard is the server's home page."""
    return redirect(url_for("dashboard.overview"))


#: Where a sign-in may return to: the dashboard's own pages, with a plain query. Anything
#: else (``//host``, ``/\thost``, ``/%09/host``, a scheme, a backslash) could send the
#: browser off this server once it strips or unescapes characters.
_NEXT = re.compile(r"/ui(/[A-Za-z0-9._~/-]*)?(\?[A-Za-z0-9._~=&%+-]*)?")


def safe_next(target: str | None) -> str:
    """``target`` if it is a dashboard path, else the dashboard's overview."""
    if target and _NEXT.fullmatch(target) and "//" not in target:
        return target
    return url_for("dashboard.overview")


@bp.route("/ui/login", methods=["GET", "POST"])
def login():
    """Sign in with an admin API key (API-key mode only)."""
    reg = get_registry()
    auth = reg.auth
    target = safe_next(request.values.get("next"))
    if auth.open_mode:
        return redirect(target)
    error = ""
    if request.method == "POST":
        try:
            token = auth.issue_token(request.form.get("apikey", ""))
            user = auth.user_for_header(f"Bearer {token['access_token']}")
            if not user.admin:
                raise Forbidden("This key is not an admin key; the dashboard needs one.")
            answer = make_response(redirect(target))
            answer.set_cookie(
                COOKIE,
                token["access_token"],
                max_age=token["expires_in"],
                httponly=True,
                samesite="Strict",
                secure=secure_cookies(reg.config),
            )
            return answer
        except (Unauthorized, Forbidden) as exc:
            error = exc.message
    return render_template("login.html", error=error, next=target), (401 if error else 200)


@bp.post("/ui/logout")
def logout():
    """Sign out: drop the dashboard cookie."""
    answer = make_response(redirect(url_for("dashboard.login")))
    answer.delete_cookie(COOKIE)
    return answer


def _job_row(job: Job) -> dict[str, Any]:
    """A job with what the templates show beside it: ISO creation time, run duration."""
    duration = job.finished_at - job.running_at if job.finished_at and job.running_at else None
    return {"job": job, "created": iso(job.created), "duration": duration}


@bp.get("/ui")
def overview():
    """Backends, the newest jobs (filter by status and backend), the newest sessions."""
    reg = get_registry()
    status = request.args.get("status") or None
    backend = request.args.get("backend") or None
    statuses = [s.value for s in JobStatus]
    if status and status not in statuses:
        raise InvalidInput(f"No job status {status!r}; use one of {statuses}.")
    page = max(0, request.args.get("page", 0, type=int))
    jobs, count = reg.store.list_jobs(
        JobQuery(
            user_id=None, limit=PAGE_SIZE, offset=page * PAGE_SIZE, backend=backend, status=status
        )
    )
    queues = reg.store.backend_queue_lengths()
    backends = [reg.metadata.summary(name, queues.get(name, 0)) for name in reg.metadata.names()]
    return render_template(
        "overview.html",
        backends=backends,
        jobs=[_job_row(j) for j in jobs],
        count=count,
        page=page,
        page_size=PAGE_SIZE,
        status=status,
        backend=backend,
        statuses=statuses,
        sessions=reg.store.list_sessions(limit=20),
        iso=iso,
        queue_depth=reg.store.queue_depth(),
        busy=reg.runner.busy,
        executor=reg.runner.executor_name,
        open_mode=reg.auth.open_mode,
    )


@bp.get("/ui/jobs/<job_id>")
def job_page(job_id: str):
    """One job: its row, its log, and a summary of its result with a plot of the counts."""
    reg = get_registry()
    job = reg.store.get_job(job_id)
    if job is None:
        raise NotFound(f"Job {job_id} was not found.")
    # A private job's result belongs to its owner alone (and is deleted once read).
    text = (
        reg.store.job_result(job_id)
        if job.status == JobStatus.COMPLETED and not job.private
        else None
    )
    return render_template(
        "job.html",
        row=_job_row(job),
        job=job,
        logs=reg.store.job_logs(job_id),
        pubs=summarize(text) if text else [],
        iso=iso,
        open_mode=reg.auth.open_mode,
    )
