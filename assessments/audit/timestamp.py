"""RFC 3161 time-stamps for checkpoints: the request, the token, and its verification.

A time-stamping authority (TSA) signs "this SHA-256 digest existed at this time"
with a certificate we trust. We send the digest of a checkpoint's canonical
message, keep the token the TSA returns (its ``TimeStampToken``, a CMS
SignedData), and later check that the token covers that same digest and was
signed by a certificate issued by (or equal to) one in ``AUDIT_TSA_CA_FILE``.

The DER needed is small and fixed, so it is written and read here rather than
through an ASN.1 library; ``cryptography`` checks the signatures. The same
token can be checked with OpenSSL:
``openssl ts -verify -digest HEX -in CHECKPOINT.tsr -token_in -CAfile tsa-ca.pem``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

OID_SHA256 = "2.16.840.1.101.3.4.2.1"
OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_TST_INFO = "1.2.840.113549.1.9.16.1.4"
OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    OID_SHA256: hashes.SHA256,
    "2.16.840.1.101.3.4.2.2": hashes.SHA384,
    "2.16.840.1.101.3.4.2.3": hashes.SHA512,
}
RSA_SIGNATURES = {
    "1.2.840.113549.1.1.1",  # rsaEncryption, with the SignerInfo's digest algorithm
    "1.2.840.113549.1.1.11",
    "1.2.840.113549.1.1.12",
    "1.2.840.113549.1.1.13",
}
ECDSA_SIGNATURES = {"1.2.840.10045.4.3.2", "1.2.840.10045.4.3.3", "1.2.840.10045.4.3.4"}
OID_ED25519 = "1.3.101.112"


class TimestampError(Exception):
    """The TSA gave no usable token (unreachable, refused, or a reply we cannot trust); retried later."""


class TimestampInvalid(Exception):
    """A stored token does not prove that the checkpoint existed when it says."""


# --- DER --------------------------------------------------------------------


@dataclass(frozen=True)
class Tlv:
    tag: int
    body: bytes
    raw: bytes


def _encode(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + body


def _encode_oid(dotted: str) -> bytes:
    first, second, *rest = (int(part) for part in dotted.split("."))
    body = bytearray([first * 40 + second])
    for arc in rest:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return _encode(0x06, bytes(body))


def _encode_int(value: int) -> bytes:
    return _encode(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def _read(data: bytes, pos: int = 0) -> tuple[Tlv, int]:
    if pos + 2 > len(data) or data[pos] & 0x1F == 0x1F:
        raise ValueError("truncated or unsupported DER")
    size, start = data[pos + 1], pos + 2
    if size & 0x80:
        count = size & 0x7F
        if not 0 < count <= 4:
            raise ValueError("unsupported DER length")
        size, start = int.from_bytes(data[start : start + count], "big"), start + count
    end = start + size
    if end > len(data):
        raise ValueError("truncated DER")
    return Tlv(data[pos], data[start:end], data[pos:end]), end


def _parse(data: bytes) -> Tlv:
    tlv, end = _read(data)
    if end != len(data):
        raise ValueError("trailing bytes after DER")
    return tlv


def _children(tlv: Tlv) -> list[Tlv]:
    items, pos = [], 0
    while pos < len(tlv.body):
        item, pos = _read(tlv.body, pos)
        items.append(item)
    return items


def _oid(tlv: Tlv) -> str:
    if tlv.tag != 0x06 or not tlv.body:
        raise ValueError("expected an OBJECT IDENTIFIER")
    arcs, value = [], 0
    for byte in tlv.body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in (first, arcs[0] - 40 * first, *arcs[1:]))


def _int(tlv: Tlv) -> int:
    if tlv.tag != 0x02:
        raise ValueError("expected an INTEGER")
    return int.from_bytes(tlv.body, "big", signed=True)


def _expect(tlv: Tlv, tag: int, what: str) -> Tlv:
    if tlv.tag != tag:
        raise ValueError(f"expected {what}")
    return tlv


# --- request and reply ------------------------------------------------------


def timestamp_request(*, digest: bytes, nonce: int) -> bytes:
    """A DER TimeStampReq for a SHA-256 digest, asking for the TSA's certificate in the token."""
    algorithm = _encode(0x30, _encode_oid(OID_SHA256) + b"\x05\x00")
    imprint = _encode(0x30, algorithm + _encode(0x04, digest))
    return _encode(0x30, _encode_int(1) + imprint + _encode_int(nonce) + b"\x01\x01\xff")


def timestamp_reply_token(reply: bytes) -> bytes:
    """The TimeStampToken (DER ContentInfo) from a TimeStampResp, or TimestampError with the TSA's reason."""
    try:
        parts = _children(_expect(_parse(reply), 0x30, "a TimeStampResp"))
        status_info = _children(_expect(parts[0], 0x30, "a PKIStatusInfo"))
        status = _int(status_info[0])
    except (ValueError, IndexError) as exc:
        raise TimestampError(f"the TSA's reply is not a time-stamp response ({exc})") from exc
    if status not in (0, 1):  # granted, grantedWithMods
        text = ""
        if len(status_info) > 1 and status_info[1].tag == 0x30:
            text = "; ".join(t.body.decode("utf-8", "replace") for t in _children(status_info[1]))
        raise TimestampError(f"the TSA refused the request (status {status}{': ' + text if text else ''})")
    if len(parts) < 2:
        raise TimestampError("the TSA granted the request but sent no token")
    return parts[1].raw


# --- the token --------------------------------------------------------------


@dataclass(frozen=True)
class TokenInfo:
    digest_algorithm: str
    digest: bytes
    gen_time: dt.datetime
    nonce: int | None
    signer_subject: str


def _gen_time(tlv: Tlv) -> dt.datetime:
    text = _expect(tlv, 0x18, "a GeneralizedTime").body.decode("ascii")
    if not text.endswith("Z"):
        raise ValueError("genTime is not in UTC")
    whole, _, fraction = text[:-1].partition(".")
    moment = dt.datetime.strptime(whole, "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    return moment + dt.timedelta(microseconds=int((fraction or "0")[:6].ljust(6, "0")))


def _verify_signature(
    certificate: x509.Certificate, signature: bytes, signed: bytes, algorithm: str, digest: str
) -> None:
    hash_type = DIGESTS.get(digest)
    public = certificate.public_key()
    if algorithm in RSA_SIGNATURES and hash_type and isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, signed, padding.PKCS1v15(), hash_type())
    elif algorithm in ECDSA_SIGNATURES and hash_type and isinstance(public, ec.EllipticCurvePublicKey):
        public.verify(signature, signed, ec.ECDSA(hash_type()))
    elif algorithm == OID_ED25519 and isinstance(public, ed25519.Ed25519PublicKey):
        public.verify(signature, signed)
    else:
        raise ValueError(f"unsupported signature algorithm {algorithm} with digest {digest}")


def _signer(certificates: list[x509.Certificate], sid: Tlv) -> x509.Certificate:
    if sid.tag == 0x30:  # IssuerAndSerialNumber
        issuer, serial = _children(sid)
        for certificate in certificates:
            if certificate.serial_number == _int(serial) and certificate.issuer.public_bytes() == issuer.raw:
                return certificate
    elif sid.tag == 0x80:  # SubjectKeyIdentifier
        for certificate in certificates:
            try:
                ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
            except x509.ExtensionNotFound:
                continue
            if ski == sid.body:
                return certificate
    raise ValueError("the token does not carry its signer's certificate")


def _check_signer(signer: x509.Certificate, trusted: Sequence[x509.Certificate], at: dt.datetime) -> None:
    try:
        usage = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound as exc:
        raise TimestampInvalid("the signer's certificate is not for time-stamping") from exc
    if not usage.critical or ExtendedKeyUsageOID.TIME_STAMPING not in usage.value:
        raise TimestampInvalid("the signer's certificate lacks a critical timeStamping extended key usage")
    if not signer.not_valid_before_utc <= at <= signer.not_valid_after_utc:
        raise TimestampInvalid("the token's time is outside its signer certificate's validity")
    for anchor in trusted:
        if anchor == signer:
            return
        try:
            signer.verify_directly_issued_by(anchor)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return
    raise TimestampInvalid(f"the token is signed by {signer.subject.rfc4514_string()}, not a trusted TSA")


def timestamp_verify(*, token: bytes, message: bytes, trusted: Sequence[x509.Certificate]) -> TokenInfo:
    """Check that ``token`` time-stamps SHA-256(``message``) under a trusted TSA; return what it says.

    Raises TimestampInvalid naming the first thing wrong.
    """
    if not trusted:
        raise TimestampInvalid("no trusted time-stamping authority is configured (set AUDIT_TSA_CA_FILE)")
    try:
        content_info = _children(_expect(_parse(token), 0x30, "a ContentInfo"))
        if _oid(content_info[0]) != OID_SIGNED_DATA:
            raise ValueError("not a CMS SignedData")
        signed_data = _children(_expect(_children(_expect(content_info[1], 0xA0, "[0] content"))[0], 0x30, "data"))
        encap = _children(_expect(signed_data[2], 0x30, "encapsulated content"))
        if _oid(encap[0]) != OID_TST_INFO:
            raise ValueError("the signed content is not a TSTInfo")
        tst_der = _expect(_children(_expect(encap[1], 0xA0, "[0] eContent"))[0], 0x04, "an OCTET STRING").body
        rest = signed_data[3:]
        certificates = [
            x509.load_der_x509_certificate(item.raw) for tlv in rest if tlv.tag == 0xA0 for item in _children(tlv)
        ]
        signer_infos = [tlv for tlv in rest if tlv.tag == 0x31]
        if len(signer_infos) != 1 or len(_children(signer_infos[0])) != 1:
            raise ValueError("expected exactly one signer")
        info = _children(_children(signer_infos[0])[0])
        sid, digest_algorithm = info[1], _oid(_children(info[2])[0])
        attributes = _expect(info[3], 0xA0, "signed attributes")
        signature_algorithm = _oid(_children(info[4])[0])
        signature = _expect(info[5], 0x04, "a signature").body
        values: dict[str, Tlv] = {}
        for attribute in _children(attributes):
            kind, found = _children(attribute)
            values[_oid(kind)] = _children(found)[0]
        tst = _children(_expect(_parse(tst_der), 0x30, "a TSTInfo"))
        imprint = _children(tst[2])
        imprint_algorithm = _oid(_children(imprint[0])[0])
        imprint_digest = _expect(imprint[1], 0x04, "a hashed message").body
        gen_time = _gen_time(tst[4])
        nonce = next((_int(t) for t in tst[5:] if t.tag == 0x02), None)
        signer = _signer(certificates, sid)
    except (ValueError, IndexError) as exc:
        raise TimestampInvalid(f"the token cannot be read ({exc})") from exc
    if imprint_algorithm != OID_SHA256 or imprint_digest != hashlib.sha256(message).digest():
        raise TimestampInvalid("the token time-stamps a different message than this checkpoint")
    hash_type = DIGESTS.get(digest_algorithm)
    content_type = values.get(OID_CONTENT_TYPE)
    if content_type is None or _oid(content_type) != OID_TST_INFO:
        raise TimestampInvalid("the token's signed attributes do not name a TSTInfo")
    signed_digest = values.get(OID_MESSAGE_DIGEST)
    if hash_type is None or signed_digest is None:
        raise TimestampInvalid(f"the token's digest algorithm {digest_algorithm} is not accepted")
    hasher = hashes.Hash(hash_type())
    hasher.update(tst_der)
    if signed_digest.body != hasher.finalize():
        raise TimestampInvalid("the token's signature does not cover its time-stamp")
    try:
        _verify_signature(signer, signature, b"\x31" + attributes.raw[1:], signature_algorithm, digest_algorithm)
    except (InvalidSignature, ValueError) as exc:
        raise TimestampInvalid(f"the token's signature does not verify ({exc or 'bad signature'})") from exc
    _check_signer(signer, trusted, gen_time)
    return TokenInfo(imprint_algorithm, imprint_digest, gen_time, nonce, signer.subject.rfc4514_string())


def tsa_certificates_load(path: str | Path) -> list[x509.Certificate]:
    """The trusted TSA certificates (PEM, one or more): the TSA's own or its issuer's."""
    return x509.load_pem_x509_certificates(Path(path).read_bytes())


def timestamp_fetch(
    *, url: str, message: bytes, trusted: Sequence[x509.Certificate], timeout: float = 10.0
) -> tuple[bytes, TokenInfo]:
    """Ask the TSA at ``url`` to time-stamp SHA-256(``message``); return the verified token.

    Raises TimestampError for anything that leaves us without a token we can trust.
    """
    nonce = secrets.randbits(63)
    request = timestamp_request(digest=hashlib.sha256(message).digest(), nonce=nonce)
    try:
        reply = requests.post(
            url,
            data=request,
            headers={"Content-Type": "application/timestamp-query", "Accept": "application/timestamp-reply"},
            timeout=timeout,
        )
    except requests.RequestException as exc:
        raise TimestampError(f"the TSA at {url} is unreachable: {exc}") from exc
    if reply.status_code != 200:
        raise TimestampError(f"the TSA at {url} answered HTTP {reply.status_code}")
    token = timestamp_reply_token(reply.content)
    try:
        info = timestamp_verify(token=token, message=message, trusted=trusted)
    except TimestampInvalid as exc:
        raise TimestampError(f"the TSA's token was refused: {exc}") from exc
    if info.nonce != nonce:
        raise TimestampError("the TSA's token answers another request (nonce differs)")
    return token, info
