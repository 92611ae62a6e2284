"""A small web app protected by authlib's Flask client: what a team would run behind
Tessera. Run by the browser test:

    demo_app.py ISSUER CLIENT_ID CLIENT_SECRET PORT

`/` shows the signed-in user's claims, or a link to sign in with Tessera.
"""

import html
import json
import secrets
import sys

from authlib.integrations.flask_client import OAuth
from flask import Flask, redirect, session, url_for

issuer, client_id, client_secret, port = sys.argv[1:5]

app = Flask(__name__)
app.secret_key = secrets.token_hex(32)
# Its own cookie name: Tessera's cookies live on the same host (ports do not separate them).
app.config["SESSION_COOKIE_NAME"] = "demo_session"

oauth = OAuth(app)
oauth.register(
    "tessera",
    client_id=client_id,
    client_secret=client_secret,
    server_metadata_url=issuer + "/.well-known/openid-configuration",
    client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256"},
)


@app.route("/")
def home():
    user = session.get("user")
    if not user:
        return '<h1>Demo app</h1><p><a href="/login">Sign in with Tessera</a></p>'
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td id='claim-{html.escape(k)}'>"
        f"{html.escape(json.dumps(v) if not isinstance(v, str) else v)}</td></tr>"
        for k, v in sorted(user.items())
    )
    return f"<h1>Signed in as {html.escape(user.get('email', ''))}</h1><table>{rows}</table>"


@app.route("/login")
def login():
    return oauth.tessera.authorize_redirect(url_for("callback", _external=True))


@app.route("/callback")
def callback():
    # Exchanges the code (with the PKCE verifier) and validates the ID token against the JWKS,
    # with the nonce of this sign-in.
    token = oauth.tessera.authorize_access_token()
    session["user"] = dict(token["userinfo"])
    return redirect("/")


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(port))
