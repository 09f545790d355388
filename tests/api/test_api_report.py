"""GET /runs/{run_id}/report: the HTML report over the real server, behind the token."""

from __future__ import annotations

from pathlib import Path

import httpx
from api_support import TOKEN

from provenir.core.config import RunConfig
from provenir.train.runner import train


def test_report_served_with_auth_and_strict_csp(tmp_path: Path, serve, client) -> None:
    artifacts = tmp_path / "artifacts"
    manifest = train(
        RunConfig.from_dict({"backend": "stub", "name": "api-report", "output_dir": str(artifacts)})
    )
    url, _ = serve(artifacts, token=TOKEN)
    response = client.get(f"{url}/runs/{manifest.run_id}/report")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert manifest.manifest_hash in response.text and "api-report" in response.text
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert httpx.get(f"{url}/runs/{manifest.run_id}/report").status_code == 401
    missing = client.get(f"{url}/runs/00000000-0000-4000-8000-000000000000/report")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert client.get(f"{url}/runs/..%2F..%2Fetc/report").status_code in (400, 404, 422)
