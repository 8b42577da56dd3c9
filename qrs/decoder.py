"""``RestrictedDecoder``: the client's ``RuntimeDecoder``, limited to what job params need.

``RuntimeDecoder`` turns any ``{"__type__": ...}`` object into its Python value, and some
of those run code chosen by the payload: ``settings`` calls the constructor of any class
in ``qiskit.quantum_info.operators`` (an ``Operator`` of a 16-qubit circuit allocates
64 GiB), ``_json`` a result class's, ``Result`` and the result containers build whole
result trees, ``spmatrix`` opens a zip archive. Pubs and options of sampler and
estimator jobs need none of them, except the few classes of a layer noise model that
an Estimator's ``resilience.layer_noise_model`` carries. This subclass decodes only the
types ``payload_guard.refusal`` allows (``ALLOWED_TYPES``, ``CLASS_TYPES``) and refuses
the rest with ``InvalidInput``, naming the type, before ``RuntimeDecoder`` sees it. ``BindingsArray`` keys, JSON text that
``RuntimeDecoder`` parses a second time with itself, must be plain lists of parameter
names, so nothing typed can hide in them.

The submission check and the runner both decode with this class, so what is accepted
and what runs are decoded the same way.
"""

from __future__ import annotations

from typing import Any

from qiskit_ibm_runtime import RuntimeDecoder

from .errors import InvalidInput
from .payload_guard import check_bindings_keys, refusal


class RestrictedDecoder(RuntimeDecoder):
    """``RuntimeDecoder`` for untrusted job params: an allow-list of ``__type__`` values."""

    def decode(self, s: str) -> Any:
        """Plain JSON decoding plus the object hook; none of ``RuntimeDecoder.decode``'s
        whole-document conversions (executor, calibration and noise-learner params are
        read by their own models, never by this decoder)."""
        return super(RuntimeDecoder, self).decode(s)

    def object_hook(self, obj: Any) -> Any:
        """Refuse every type outside the allow-list; delegate the others."""
        if "__type__" in obj:
            kind = obj["__type__"]
            if why := refusal(obj):
                raise InvalidInput(
                    f"params: values of type {str(kind)[:40]!r} are not "
                    f"accepted in job params: {why}."
                )
            if kind == "BindingsArray":
                check_bindings_keys("params", obj.get("__value__"))
        return super().object_hook(obj)
