"""Challenge tokens: 32 random bytes, URL-safe base64 without padding; stored as SHA-256 hex."""
import base64
import hashlib
import secrets


def new_token():
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")


def token_hash(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
