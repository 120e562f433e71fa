"""certificates.k8s.io/v1: CertificateSigningRequest (stored and listed; no signer runs yet)."""

from __future__ import annotations

import base64

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common
from kubelite.api.kinds.apps import age_cell, age_column, definition
from kubelite.api.registry import Column, Obj, Registry, Resource

GROUP = "certificates.k8s.io"
USAGES = ["any", "cert sign", "client auth", "code signing", "content commitment", "crl sign", "data encipherment",
          "decipher only", "digital signature", "email protection", "encipher only", "ipsec end system",
          "ipsec tunnel", "ipsec user", "key agreement", "key encipherment", "microsoft sgc", "netscape sgc",
          "ocsp signing", "s/mime", "server auth", "signing", "timestamping"]


def default_csr(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    if not spec.get("usages"):
        spec["usages"] = ["digital signature", "key encipherment"]


def prepare_create(obj: Obj) -> None:
    obj.pop("status", None)


def validate_csr(obj: Obj) -> list[FieldError]:
    """ValidateCertificateSigningRequestCreate: the essentials (a PEM request, a signer, known usages)."""
    spec = obj.get("spec") or {}
    errs: list[FieldError] = []
    request = spec.get("request")
    if not request:
        errs.append(ferr.required("spec.request", ""))
    else:
        try:
            pem = base64.b64decode(request, validate=True)
        except (ValueError, TypeError):
            pem = b""
        if b"-----BEGIN CERTIFICATE REQUEST-----" not in pem:
            errs.append(ferr.invalid("spec.request", request, "PEM block type must be CERTIFICATE REQUEST"))
    signer = spec.get("signerName") or ""
    if not signer:
        errs.append(ferr.required("spec.signerName", ""))
    elif "/" not in signer:
        errs.append(ferr.invalid("spec.signerName", signer, "must be a fully qualified domain and path of the form "
                                                            "'example.com/signer-name'"))
    for i, u in enumerate(spec.get("usages") or []):
        if u not in USAGES:
            errs.append(ferr.not_supported(f"spec.usages[{i}]", u, USAGES))
    exp = spec.get("expirationSeconds")
    if isinstance(exp, int) and exp < 600:
        errs.append(ferr.invalid("spec.expirationSeconds", exp, "may not specify a duration less than 600 seconds "
                                                                "(10 minutes)"))
    return errs


def validate_csr_update(new: Obj, old: Obj) -> list[FieldError]:
    errs = common.validate_object_meta_update(new, old)
    if (new.get("spec") or {}) != (old.get("spec") or {}):
        errs.append(ferr.invalid("spec", "", "field is immutable"))
    return errs


def _duration(seconds: int) -> str:
    """duration.HumanDuration of spec.expirationSeconds."""
    return common.human_duration(seconds)


def csr_row(obj: Obj) -> list:
    """printCertificateSigningRequest: the CONDITION is Approved/Denied(/Failed), then Issued, else Pending."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    approved = denied = failed = False
    for c in status.get("conditions") or []:
        if c.get("status") not in (None, "", "True"):
            continue
        approved |= c.get("type") == "Approved"
        denied |= c.get("type") == "Denied"
        failed |= c.get("type") == "Failed"
    parts = []
    if denied:
        parts.append("Denied")
    elif approved:
        parts.append("Approved")
    if failed:
        parts.append("Failed")
    if status.get("certificate"):
        parts.append("Issued")
    condition = ",".join(parts) or "Pending"
    exp = spec.get("expirationSeconds")
    return [age_cell(obj), spec.get("signerName") or "", spec.get("username") or "",
            _duration(exp) if isinstance(exp, int) else "<none>", condition]


def register(reg: Registry) -> None:
    reg.register(Resource(
        group=GROUP, version="v1", kind="CertificateSigningRequest", plural="certificatesigningrequests",
        namespaced=False, short_names=("csr",), subresources=("status", "approval"),
        definition=definition(GROUP, "v1", "CertificateSigningRequest"),
        columns=(age_column(),
                 Column("SignerName", "string", description="Name of the signer that signs the certificate."),
                 Column("Requestor", "string", description="Name of the user who requested the certificate."),
                 Column("RequestedDuration", "string", description="Requested certificate duration."),
                 Column("Condition", "string", description="Status of the certificate request.")),
        row=csr_row, default=default_csr, validate=validate_csr, validate_update=validate_csr_update,
        prepare_create=prepare_create,
    ))
