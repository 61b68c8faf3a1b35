"""C2PA manifests: sign an encoded image with the user's certificate, read and check one back.

Uses the `c2pa-python` package (the C2PA project's own SDK; `pip install "stylegan[sign]"`). A
manifest holds the same facts as the metadata (an org.stylegan.provenance assertion) and the
c2pa.actions assertion with the IPTC digital source type, signed over the file's bytes, so a change
to any pixel or chunk makes it invalid. Signing works offline: no timestamp authority is asked."""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

MIME = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg"}
ASSERTION = "org.stylegan.provenance"
INSTALL = 'pip install "stylegan[sign]"'
# Environment equivalent of --sign KEY CERT, and of verify's --trust.
KEY_ENV, CERT_ENV, TRUST_ENV = "STYLEGAN_SIGN_KEY", "STYLEGAN_SIGN_CERT", "STYLEGAN_TRUST_ANCHORS"


def _c2pa():
    try:
        import c2pa
    except ImportError:
        raise ValueError(f"signing needs the c2pa-python package: {INSTALL}") from None
    return c2pa


@dataclass(frozen=True)
class Signer:
    """A private key and its certificate chain (PEM, leaf first), read when made so a bad file is
    one line before any image is rendered. `alg` follows from the key: es256/es384/es512 for EC
    P-256/384/521, ed25519, ps256 for RSA."""
    key_pem: bytes
    cert_pem: bytes
    alg: str

    @classmethod
    def from_files(cls, key: str | os.PathLike, cert: str | os.PathLike) -> "Signer":
        _c2pa()
        key_pem, cert_pem = _read_pem(key, "private key"), _read_pem(cert, "certificate")
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
        try:
            private = load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{key}: not an unencrypted PEM private key ({e})") from None
        try:
            leaf = x509.load_pem_x509_certificate(cert_pem)
        except ValueError as e:
            raise ValueError(f"{cert}: not a PEM certificate ({e})") from None
        if _public_pem(leaf.public_key()) != _public_pem(private.public_key()):
            raise ValueError(f"{cert}: its first certificate is not the one of the key {key}")
        if isinstance(private, ec.EllipticCurvePrivateKey):
            alg = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}.get(private.curve.name)
        elif isinstance(private, ed25519.Ed25519PrivateKey):
            alg = "ed25519"
        elif isinstance(private, rsa.RSAPrivateKey):
            alg = "ps256"
        else:
            alg = None
        if alg is None:
            raise ValueError(f"{key}: C2PA signs with EC P-256/384/521, Ed25519 or RSA keys, not this one")
        return cls(key_pem, cert_pem, alg)

    @classmethod
    def from_env(cls) -> Optional["Signer"]:
        """The signer named by STYLEGAN_SIGN_KEY and STYLEGAN_SIGN_CERT, None when neither is set."""
        key, cert = os.environ.get(KEY_ENV), os.environ.get(CERT_ENV)
        if not key and not cert:
            return None
        if not (key and cert):
            raise ValueError(f"set both {KEY_ENV} and {CERT_ENV} to sign, or neither")
        return cls.from_files(key, cert)

    def __repr__(self) -> str:   # never print a private key
        return f"Signer(alg={self.alg!r})"


def _public_pem(public_key) -> bytes:
    from cryptography.hazmat.primitives import serialization
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _read_pem(path: str | os.PathLike, what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ValueError(f"{path}: cannot read the {what} ({e.strerror or e})") from None
    if b"-----BEGIN" not in data:
        raise ValueError(f"{path}: not a PEM {what}")
    return data


def _context(c2pa, trust_pem: Optional[bytes] = None):
    settings: dict[str, Any] = {"builder": {"thumbnail": {"enabled": False}}}   # a thumbnail would add ~250 kB
    if trust_pem:
        settings["verify"] = {"verify_trust": True}
        settings["trust"] = {"trust_anchors": trust_pem.decode("ascii", "replace")}
    return c2pa.Context.from_dict(settings)


def sign(data: bytes, fmt: str, facts: Mapping[str, Any], signer: Signer, title: Optional[str] = None) -> bytes:
    """The encoded image `data` with a C2PA manifest of `facts`, signed by `signer`."""
    c2pa = _c2pa()
    source = facts.get("digital_source_type")
    action = {"action": "c2pa.created", "digitalSourceType": source} if source else {"action": "c2pa.cropped"}
    manifest = {"claim_generator_info": [{"name": "stylegan", "version": str(facts.get("software", "")).split()[-1]}],
                "assertions": [{"label": "c2pa.actions", "data": {"actions": [action]}},
                               {"label": ASSERTION, "data": dict(facts)}]}
    if title:
        manifest["title"] = title
    info = c2pa.C2paSignerInfo(signer.alg.encode(), signer.cert_pem, signer.key_pem, None)
    out = io.BytesIO()
    try:
        with c2pa.Signer.from_info(info) as c_signer, \
                c2pa.Builder(json.dumps(manifest), context=_context(c2pa)) as builder:
            builder.sign(c_signer, MIME[fmt], io.BytesIO(data), out)
    except c2pa.C2paError as e:
        raise ValueError(f"C2PA signing failed: {e}") from None
    return out.getvalue()


@dataclass(frozen=True)
class ManifestCheck:
    """state: 'valid' (signature intact, signer chains to a trust anchor you gave), 'untrusted'
    (signature intact, signer not among your trust anchors), 'invalid' (the file changed after
    signing, or a bad signature), 'none', or 'unchecked' (a manifest is there but c2pa-python is not)."""
    state: str
    signer: Optional[str] = None
    facts: Optional[dict] = None
    detail: Optional[str] = None


def has_manifest(data: bytes) -> bool:
    """Whether the bytes hold C2PA data (a PNG caBX chunk, a JPEG APP11 JUMBF box), without c2pa-python."""
    if data.startswith(b"\x89PNG"):
        return b"caBX" in data
    return data.startswith(b"\xff\xd8") and b"\xff\xeb" in data and b"jumb" in data


def check(data: bytes, fmt: str, trust_pem: Optional[bytes] = None) -> ManifestCheck:
    """Read and validate the C2PA manifest in an encoded image."""
    try:
        import c2pa
    except ImportError:
        if has_manifest(data):
            return ManifestCheck("unchecked", detail=f"a manifest is present; to check it: {INSTALL}")
        return ManifestCheck("none")
    mime = MIME.get(fmt)
    if mime is None:
        return ManifestCheck("none")
    try:
        reader = c2pa.Reader.try_create(mime, io.BytesIO(data), context=_context(c2pa, trust_pem))
    except c2pa.C2paError as e:
        if not has_manifest(data):
            return ManifestCheck("none")    # e.g. a truncated file that never had one
        return ManifestCheck("invalid", detail=str(e).splitlines()[0][:200])
    if reader is None:
        return ManifestCheck("none")
    with reader:
        state = reader.get_validation_state()
        manifest = reader.get_active_manifest() or {}
        results = reader.get_validation_results() or {}
    sig = manifest.get("signature_info") or {}
    signer = ", ".join(v for v in (sig.get("common_name"), sig.get("issuer")) if v) or None
    facts = next((a.get("data") for a in manifest.get("assertions", []) if a.get("label") == ASSERTION), None)
    failures = [f.get("code") for f in (results.get("activeManifest") or {}).get("failure", [])]
    if state == "Trusted":
        return ManifestCheck("valid", signer, facts)
    if state == "Valid" or (state == "Invalid" and failures and all("untrusted" in str(c) for c in failures)):
        return ManifestCheck("untrusted", signer, facts)
    return ManifestCheck("invalid", signer, facts, ", ".join(str(c) for c in failures) or None)
