"""Whether the Hugging Face hub may and can be reached, decided in seconds.

Without network, ``huggingface_hub`` retries every request with back-off for about half a
minute per file before giving up. Provenir asks first: ``HF_HUB_OFFLINE`` (or
``HF_DATASETS_OFFLINE`` / ``TRANSFORMERS_OFFLINE``) set to a true value means never go online;
otherwise one TCP connection to the hub endpoint (``HF_ENDPOINT``) with a short timeout tells
whether going online can work at all. Models are never fetched online (see
:mod:`provenir.train.model_files`); this module serves hub datasets.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

#: Seconds to wait for the hub's TCP handshake before calling it unreachable.
PROBE_TIMEOUT_S = 3.0
_TRUE = {"1", "ON", "YES", "TRUE"}
_DEFAULT_ENDPOINT = "https://huggingface.co"


def offline_requested() -> bool:
    """True when the environment asks Hugging Face libraries to stay offline."""
    return any(
        os.environ.get(name, "").strip().upper() in _TRUE
        for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_endpoint() -> str:
    """The hub URL Hugging Face libraries use (``HF_ENDPOINT``, default https://huggingface.co)."""
    return (os.environ.get("HF_ENDPOINT") or _DEFAULT_ENDPOINT).rstrip("/")


def unreachable_reason(timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """``None`` when a TCP connection to the hub endpoint opens within ``timeout_s``, else why not.

    A proxy configured through ``HTTPS_PROXY``/``HTTP_PROXY`` is not probed (the connection
    would go to it, not to the hub), so with one set the hub is assumed reachable.
    """
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")):
        return None
    parts = urlsplit(hub_endpoint())
    host = parts.hostname or ""
    port = parts.port or (80 if parts.scheme == "http" else 443)
    # Name resolution ignores socket timeouts and can hang far longer than a connect, so it
    # runs in a daemon thread that is abandoned when it overruns.
    outcome: dict[str, Any] = {}

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                outcome["ok"] = True
        except socket.gaierror as exc:
            outcome["error"] = f"cannot resolve {host} ({exc.strerror or exc})"
        except TimeoutError:
            outcome["error"] = f"no answer from {host}:{port} within {timeout_s:g} s"
        except OSError as exc:
            outcome["error"] = f"cannot connect to {host}:{port} ({exc.strerror or exc})"

    worker = threading.Thread(target=connect, name="provenir-hub-probe", daemon=True)
    worker.start()
    worker.join(timeout_s + 0.5)
    if outcome.get("ok"):
        return None
    return outcome.get("error") or f"no answer from {host} within {timeout_s:g} s"
