"""GitHub repository: required files present, the evals workflow's last result, branch protection.

Talks to the REST API (api.github.com or a GitHub Enterprise ``api_url``) with a token. The
parsing is pure functions over the decoded JSON, so it is tested on recorded API responses.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

from assessments.evidence.connectors.base import ConnectorError, Facts, Fetched, Source, register
from assessments.evidence.connectors.http_json import (
    decode_json,
    expect_dict,
    expect_list,
    header,
    joined_payload,
    snippet,
    status_error,
)
from assessments.evidence.outbound import OutboundResponse, outbound_get

SERVICE = "GitHub"
DEFAULT_API_URL = "https://api.github.com"
REPOSITORY_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


# --- Parsing (pure) ---------------------------------------------------------------------


def github_workflow_facts(runs_payload: Any) -> tuple[dict[str, float], dict[str, Any]]:
    """``workflow_success`` from a workflow-runs list: 1 only if the latest completed run succeeded.

    No completed run at all counts as 0: a workflow that never finished proves nothing.
    """
    payload = expect_dict(runs_payload, "the workflow runs answer", service=SERVICE)
    runs = expect_list(payload.get("workflow_runs"), "workflow_runs", service=SERVICE)
    completed = [run for run in runs if isinstance(run, dict) and run.get("status", "completed") == "completed"]
    if not completed:
        return {"workflow_success": 0.0}, {"workflow_run": None, "workflow_note": "no completed run on this branch"}
    run = completed[0]
    conclusion = run.get("conclusion")
    return (
        {"workflow_success": 1.0 if conclusion == "success" else 0.0},
        {
            "workflow_run": {
                "id": run.get("id"),
                "run_number": run.get("run_number"),
                "conclusion": conclusion,
                "html_url": run.get("html_url"),
                "time": run.get("updated_at") or run.get("run_started_at") or run.get("created_at"),
                "head_sha": run.get("head_sha"),
                "path": run.get("path"),
            }
        },
    )


def github_protection_facts(protection: Any | None) -> tuple[dict[str, float], dict[str, Any]]:
    """Branch protection as numbers; ``None`` means GitHub said "Branch not protected"."""
    if protection is None:
        return (
            {"branch_protected": 0.0, "required_reviews": 0.0, "status_checks_required": 0.0},
            {"protection": None},
        )
    payload = expect_dict(protection, "the branch protection answer", service=SERVICE)
    reviews = payload.get("required_pull_request_reviews")
    review_count = 0
    if isinstance(reviews, dict) and isinstance(reviews.get("required_approving_review_count"), int):
        review_count = reviews["required_approving_review_count"]
    checks_section = payload.get("required_status_checks")
    contexts: list[str] = []
    if isinstance(checks_section, dict):
        # "checks" replaced "contexts"; older Enterprise servers send only "contexts". A check
        # named in both is one check.
        for check in checks_section.get("checks") or []:
            if isinstance(check, dict) and isinstance(check.get("context"), str):
                contexts.append(check["context"])
        for context in checks_section.get("contexts") or []:
            if isinstance(context, str):
                contexts.append(context)
    distinct = sorted(set(contexts))
    enforce_admins = payload.get("enforce_admins")
    return (
        {
            "branch_protected": 1.0,
            "required_reviews": float(review_count),
            "status_checks_required": float(len(distinct)),
        },
        {
            "protection": {
                "required_status_checks": distinct,
                "strict": bool(checks_section.get("strict")) if isinstance(checks_section, dict) else False,
                "enforce_admins": bool(enforce_admins.get("enabled")) if isinstance(enforce_admins, dict) else False,
                "require_code_owner_reviews": bool(reviews.get("require_code_owner_reviews"))
                if isinstance(reviews, dict)
                else False,
                "dismiss_stale_reviews": bool(reviews.get("dismiss_stale_reviews"))
                if isinstance(reviews, dict)
                else False,
            }
        },
    )


def github_facts(
    *,
    repository: str,
    branch: str,
    files_present: dict[str, bool],
    workflow: str | None,
    runs_payload: Any | None,
    protection: Any | None,
) -> Facts:
    """All of a repository's facts from what each endpoint answered (already decoded)."""
    present = [path for path, found in files_present.items() if found]
    missing = [path for path, found in files_present.items() if not found]
    metrics: dict[str, float] = {
        "required_files_present": float(len(present)),
        "required_files_missing": float(len(missing)),
    }
    details: dict[str, Any] = {
        "repository": repository,
        "branch": branch,
        "required_files_present": present,
        "required_files_missing": missing,
    }
    parts = [f"{repository}@{branch}: {len(present)} of {len(files_present)} required files present"]
    if workflow is not None:
        workflow_metrics, workflow_details = github_workflow_facts(runs_payload)
        metrics |= workflow_metrics
        details |= workflow_details | {"workflow": workflow}
        run = workflow_details["workflow_run"]
        parts.append(f"last {workflow} run: {run['conclusion'] if run else 'none completed'}")
    protection_metrics, protection_details = github_protection_facts(protection)
    metrics |= protection_metrics
    details |= protection_details
    if protection is None:
        parts.append("branch not protected")
    else:
        parts.append(
            f"branch protected ({int(metrics['required_reviews'])} approving reviews, "
            f"{int(metrics['status_checks_required'])} required status checks)"
        )
    return Facts(metrics=metrics, details=details, summary="; ".join(parts) + ".")


# --- HTTP -------------------------------------------------------------------------------


def _github_message(response: OutboundResponse) -> str:
    """GitHub's own ``message`` from an error body, if it sent one."""
    try:
        body = decode_json(response, service=SERVICE)
    except ConnectorError:
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return snippet(message, 120) if isinstance(message, str) else ""


def _github_error(response: OutboundResponse, what: str) -> ConnectorError:
    """GitHub's statuses in words; a rate limit (403 or 429 with the limit spent) is transient."""
    message = _github_message(response)
    remaining = header(response, "X-RateLimit-Remaining")
    if response.status == 429 or (response.status == 403 and (remaining == "0" or "rate limit" in message.lower())):
        when = ""
        reset = header(response, "X-RateLimit-Reset")
        retry_after = header(response, "Retry-After")
        if reset.isdigit():
            when = f" until {datetime.fromtimestamp(int(reset), tz=UTC):%Y-%m-%d %H:%M} UTC"
        elif retry_after.isdigit():
            when = f" for {retry_after} seconds"
        return ConnectorError(f"GitHub's API rate limit is spent{when} ({what}); will try again later.", transient=True)
    if response.status == 401:
        return ConnectorError(
            f"GitHub rejected the token (401 {message or 'Bad credentials'}): "
            f"check it is right, not expired and not revoked."
        )
    if response.status == 403:
        return ConnectorError(
            f"GitHub refused {what} (403 {message or 'Forbidden'}): the token lacks a scope or permission it needs "
            f"(read access to contents and actions; administration read for branch protection)."
        )
    return status_error(response, service=SERVICE, what=what, detail=message)


@register
class GitHubConnector:
    """A repository's readiness signals, read with a token through the REST API.

    Configuration: ``repository`` ("owner/name"), ``api_url`` (default api.github.com),
    ``branch`` (default: the repository's default branch), ``workflow`` (a workflow file name,
    optional), ``required_files`` (paths). Secret: ``token``.
    """

    kind: ClassVar[str] = "github"
    label: ClassVar[str] = "GitHub repository"

    def _settings(self, source: Source) -> tuple[str, str, dict[str, str]]:
        repository = source.configuration.get("repository")
        if not isinstance(repository, str) or not REPOSITORY_PATTERN.match(repository.strip()):
            raise ConnectorError(f"The repository must be written owner/name (e.g. acme/claims), not {repository!r}.")
        api_url = source.configuration.get("api_url") or DEFAULT_API_URL
        if not isinstance(api_url, str):
            raise ConnectorError("api_url must be the API's base address, e.g. https://api.github.com.")
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if source.secrets.get("token"):
            headers["Authorization"] = f"Bearer {source.secrets['token']}"
        return repository.strip(), api_url.rstrip("/"), headers

    def _get(
        self, url: str, headers: dict[str, str], what: str, seen: list[OutboundResponse]
    ) -> tuple[int, Any, OutboundResponse]:
        response = outbound_get(url, headers=headers)
        seen.append(response)
        if response.status == 404:
            return 404, None, response
        if not 200 <= response.status < 300:
            raise _github_error(response, what)
        return response.status, decode_json(response, service=SERVICE), response

    def _repository(
        self, api: str, repository: str, headers: dict[str, str], seen: list[OutboundResponse]
    ) -> dict[str, Any]:
        status, body, _ = self._get(f"{api}/repos/{repository}", headers, f"repos/{repository}", seen)
        if status == 404:
            raise ConnectorError(
                f"GitHub answered 404 for repos/{repository}: check the repository name, and that the token "
                f"can see it (GitHub answers 404, not 403, for private repositories a token cannot read)."
            )
        return expect_dict(body, "the repository answer", service=SERVICE)

    def test_connection(self, source: Source) -> str:
        repository, api, headers = self._settings(source)
        body = self._repository(api, repository, headers, [])
        visibility = "private" if body.get("private") else "public"
        return (
            f"Reached {body.get('full_name', repository)} ({visibility}, default branch {body.get('default_branch')})."
        )

    def fetch(self, source: Source) -> Fetched:
        repository, api, headers = self._settings(source)
        configuration = source.configuration
        seen: list[OutboundResponse] = []
        base = f"{api}/repos/{repository}"

        # Always read the repository first: a wrong name or an unseen private repository would
        # otherwise show up as "every required file missing", which misleads.
        about = self._repository(api, repository, headers, seen)
        branch = configuration.get("branch") or about.get("default_branch")
        if not isinstance(branch, str) or not branch:
            raise ConnectorError(f"GitHub did not say which branch is {repository}'s default: set branch.")

        files = configuration.get("required_files") or []
        if not isinstance(files, list) or not all(isinstance(path, str) and path.strip() for path in files):
            raise ConnectorError("required_files must be a list of paths, e.g. RUNBOOK.md, .github/CODEOWNERS.")
        files_present: dict[str, bool] = {}
        for path in files:
            clean = path.strip().lstrip("/")
            status, _, _ = self._get(
                f"{base}/contents/{quote(clean)}?{urlencode({'ref': branch})}", headers, f"{clean} on {branch}", seen
            )
            files_present[clean] = status != 404

        workflow = configuration.get("workflow") or None
        runs_payload: Any = None
        if workflow is not None:
            query = urlencode({"branch": branch, "status": "completed", "per_page": 1})
            status, runs_payload, _ = self._get(
                f"{base}/actions/workflows/{quote(str(workflow), safe='')}/runs?{query}",
                headers,
                f"the {workflow} workflow's runs",
                seen,
            )
            if status == 404:
                raise ConnectorError(
                    f"GitHub has no workflow {workflow!r} in {repository}: give the file name under "
                    f".github/workflows (e.g. evals.yml), or its numeric id."
                )

        status, protection, response = self._get(
            f"{base}/branches/{quote(branch, safe='')}/protection", headers, f"{branch}'s protection", seen
        )
        if status == 404:
            message = _github_message(response)
            if message != "Branch not protected":
                raise ConnectorError(
                    f"GitHub answered 404 ({message or 'Not Found'}) for branch {branch!r} of {repository}: "
                    f"check the branch name."
                )

        facts = github_facts(
            repository=repository,
            branch=branch,
            files_present=files_present,
            workflow=workflow,
            runs_payload=runs_payload,
            protection=protection,
        )
        return Fetched(facts=facts, payload=joined_payload(seen))
