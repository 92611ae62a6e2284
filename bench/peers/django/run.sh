#!/usr/bin/env bash
# Benchmark peer: Django + django-otp doing Tessera's second sign-in step.
#
#   run.sh setup             venv + pinned requirements, drop and recreate the database, migrate
#   run.sh seed N OUT.csv    N users with a TOTP device and an open challenge; CSV token,secret
#   run.sh serve PORT        gunicorn on 127.0.0.1:PORT in the foreground
#   run.sh drop              drop the database
#   run.sh pyotp-rate        pyotp's TOTP verifications per second on one core (JSON line)
#
# Environment: PEER_DATABASE_URL or PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE (see
# peer/settings.py), PYTHON (default python3) to build the venv, PEER_WORKERS (default nproc).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
PY="$VENV/bin/python"
PYOTP_VERSION="2.12.1"
export DJANGO_SETTINGS_MODULE=peer.settings
export PIP_DISABLE_PIP_VERSION_CHECK=1

usage() {
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

manage() {
    (cd "$HERE" && "$PY" manage.py "$@")
}

install_venv() {
    if [ ! -x "$PY" ]; then
        "${PYTHON:-python3}" -m venv "$VENV"
    fi
    "$PY" -m pip install --quiet -r "$HERE/requirements.txt"
    cp "$HERE/requirements.txt" "$VENV/.installed-requirements"
}

setup() {
    install_venv
    manage peerdb recreate
    manage migrate --verbosity 0
}

# Set up when the venv is missing or its requirements changed; else make sure the
# database exists and is migrated (cheap when it is).
ensure() {
    if [ ! -x "$PY" ] || ! cmp -s "$HERE/requirements.txt" "$VENV/.installed-requirements"; then
        setup
    else
        manage peerdb create >/dev/null
        manage migrate --verbosity 0
    fi
}

cmd="${1:-}"
[ -n "$cmd" ] || usage
shift
case "$cmd" in
    setup)
        setup
        ;;
    seed)
        [ $# -eq 2 ] || usage
        out="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
        ensure
        manage seed_peer "$1" "$out"
        ;;
    serve)
        [ $# -eq 1 ] || usage
        ensure
        cd "$HERE"
        PEER_SECRET_KEY="${PEER_SECRET_KEY:-$("$PY" -c 'import secrets; print(secrets.token_urlsafe(50))')}"
        export PEER_SECRET_KEY
        # Sync workers, gunicorn's default: one request at a time per process, one process
        # per core. They close the connection after each response (no keep-alive).
        exec "$VENV/bin/gunicorn" peer.wsgi:application \
            --workers "${PEER_WORKERS:-$(nproc)}" \
            --worker-class sync \
            --bind "127.0.0.1:$1" \
            --log-level warning
        ;;
    drop)
        if [ -x "$PY" ]; then
            manage peerdb drop
        else
            psql -h "${PGHOST:-127.0.0.1}" -p "${PGPORT:-5432}" -U "${PGUSER:-postgres}" -d postgres \
                -c "DROP DATABASE IF EXISTS \"${PGDATABASE:-tessera_bench_peer}\" WITH (FORCE)"
        fi
        ;;
    pyotp-rate)
        [ -x "$PY" ] || install_venv
        "$PY" -m pip install --quiet "pyotp==$PYOTP_VERSION"
        exec "$PY" "$HERE/../../pyotp_rate.py"
        ;;
    *)
        usage
        ;;
esac
