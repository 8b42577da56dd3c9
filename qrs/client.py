"""Connect the stock ``qiskit-ibm-runtime`` client to a QRS server.

This only sets the three knobs README's "Connecting" section documents (``IAM_URL``,
``QISKIT_FUNCTIONS_EXPERIMENTAL``, a CRN-shaped instance and a URL resolver); users may
equally set them by hand.
"""

from __future__ import annotations

import os
from typing import Any

#: The CRN of the server's instance with the default ``QRS_INSTANCE_NAME``
#: (``Config.instance_crn``); the server accepts any instance in requests.
INSTANCE = "crn:v1:qrs:public:quantum-computing:us-east:a/qrs:qrs::"


def connect(url: str = "http://127.0.0.1:8000", token: str = "qrs", **kwargs: Any):
    """A ``QiskitRuntimeService`` talking to the QRS server at ``url``."""
    from qiskit_ibm_runtime import QiskitRuntimeService

    base = url.rstrip("/")
    os.environ["IAM_URL"] = base
    os.environ["QISKIT_FUNCTIONS_EXPERIMENTAL"] = "1"
    return QiskitRuntimeService(channel="ibm_quantum_platform", token=token, url=base,
                                instance=INSTANCE,
                                url_resolver=lambda u, *_: u.rstrip("/") + "/api/v1", **kwargs)
