"""A relying party built on authlib (not on anything of Tessera's), run by the Rust tests.

    relying_party.py start  ISSUER CLIENT_ID SECRET REDIRECT_URI [extra=value ...]
        Discovery, then the authorization URL with PKCE (S256), state and nonce.
        Prints {"url", "state", "nonce", "code_verifier"}.
    relying_party.py finish ISSUER CLIENT_ID SECRET REDIRECT_URI STATE_JSON CALLBACK_URL NOW
        Exchanges the code from the callback URL, validates the ID token against the JWKS at
        NOW (the test clock), reads userinfo, checks that a tampered ID token is rejected.
        Prints {"claims", "userinfo", "token"} or {"error", "description"}.
    relying_party.py refresh ISSUER CLIENT_ID SECRET REFRESH_TOKEN
        Prints the new token or {"error", "description"}.

SECRET is "-" for a public client. The token endpoint is called with client_secret_basic,
or client_secret_post when TESSERA_RP_AUTH=client_secret_post.
"""

import json
import os
import sys

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.base_client.errors import OAuthError
from authlib.common.security import generate_token
from authlib.jose import JsonWebKey, jwt
from authlib.jose.errors import JoseError
from authlib.oidc.core import CodeIDToken


def discover(issuer):
    metadata = requests.get(issuer + "/.well-known/openid-configuration", timeout=10).json()
    assert metadata["issuer"] == issuer, metadata
    return metadata


def session(client_id, secret, redirect_uri=None):
    method = os.environ.get("TESSERA_RP_AUTH", "client_secret_basic")
    return OAuth2Session(
        client_id,
        None if secret == "-" else secret,
        scope="openid email profile",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="none" if secret == "-" else method,
    )


def start(issuer, client_id, secret, redirect_uri, *extra):
    metadata = discover(issuer)
    client = session(client_id, secret, redirect_uri)
    code_verifier = generate_token(48)
    nonce = generate_token(20)
    params = dict(pair.split("=", 1) for pair in extra)
    url, state = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce, **params
    )
    return {"url": url, "state": state, "nonce": nonce, "code_verifier": code_verifier}


def validate(id_token, keys, issuer, client_id, nonce, access_token, now):
    claims = jwt.decode(
        id_token,
        keys,
        claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": issuer}},
        claims_params={"nonce": nonce, "client_id": client_id, "access_token": access_token},
    )
    claims.validate(now=now)
    return dict(claims)


def tampered(id_token):
    header, payload, signature = id_token.split(".")
    # Another character in the middle of the payload: a claim changed without the key.
    middle = len(payload) // 2
    replacement = "A" if payload[middle] != "A" else "B"
    return ".".join([header, payload[:middle] + replacement + payload[middle + 1 :], signature])


def finish(issuer, client_id, secret, redirect_uri, started, callback_url, now):
    started = json.loads(started)
    metadata = discover(issuer)
    client = session(client_id, secret, redirect_uri)
    client.state = started["state"]
    try:
        token = client.fetch_token(
            metadata["token_endpoint"],
            authorization_response=callback_url,
            code_verifier=started["code_verifier"],
            state=started["state"],
        )
    except OAuthError as e:
        return {"error": e.error, "description": e.description}
    keys = JsonWebKey.import_key_set(requests.get(metadata["jwks_uri"], timeout=10).json())
    now = int(now)
    claims = validate(
        token["id_token"], keys, issuer, client_id, started["nonce"], token["access_token"], now
    )
    try:
        validate(
            tampered(token["id_token"]), keys, issuer, client_id, started["nonce"],
            token["access_token"], now,
        )
        tamper_rejected = False
    except JoseError:
        tamper_rejected = True
    userinfo = client.get(metadata["userinfo_endpoint"], timeout=10)
    return {
        "claims": claims,
        "userinfo": userinfo.json(),
        "userinfo_status": userinfo.status_code,
        "token": dict(token),
        "tamper_rejected": tamper_rejected,
        "alg": json.loads(
            __import__("base64").urlsafe_b64decode(token["id_token"].split(".")[0] + "==")
        )["alg"],
    }


def refresh(issuer, client_id, secret, refresh_token):
    metadata = discover(issuer)
    client = session(client_id, secret)
    try:
        token = client.refresh_token(metadata["token_endpoint"], refresh_token=refresh_token)
    except OAuthError as e:
        return {"error": e.error, "description": e.description}
    return {"token": dict(token)}


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    result = {"start": start, "finish": finish, "refresh": refresh}[command](*args)
    print(json.dumps(result))
