import json

from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.db import transaction
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice

from .models import Challenge
from .tokens import token_hash

AUTH_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _error(status, code):
    return JsonResponse({"error": {"code": code}}, status=status)


def _parse(request):
    """(token, code) from the JSON body, or None when the body is not what we take."""
    try:
        body = json.loads(request.body)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    token, code = body.get("challenge_token"), body.get("code")
    if not isinstance(token, str) or not isinstance(code, str):
        return None
    return token, code


def _new_session(user):
    """A database session holding what django.contrib.auth.login() would put there."""
    session = SessionStore()
    session[SESSION_KEY] = user._meta.pk.value_to_string(user)
    session[BACKEND_SESSION_KEY] = AUTH_BACKEND
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


@csrf_exempt
@require_POST
def verify(request):
    """POST /api/v1/login/verify: the second step of sign-in with a TOTP code."""
    parsed = _parse(request)
    if parsed is None:
        return _error(422, "validation_error")
    token, code = parsed
    now = timezone.now()
    with transaction.atomic():
        try:
            challenge = (
                Challenge.objects.select_for_update(of=("self",))
                .select_related("user")
                .get(token_hash=token_hash(token))
            )
        except Challenge.DoesNotExist:
            return _error(401, "invalid_challenge")
        if (
            challenge.consumed_at is not None
            or challenge.expires_at <= now
            or challenge.attempts >= Challenge.MAX_ATTEMPTS
        ):
            return _error(401, "invalid_challenge")
        challenge.attempts += 1
        # Locked too, so two sign-ins of one user cannot both pass last_t with one code.
        # No ORDER BY: "ORDER BY id LIMIT 1" can lead the planner to walk the primary key.
        devices = TOTPDevice.objects.select_for_update().filter(
            user_id=challenge.user_id, confirmed=True
        )[:1]
        device = next(iter(devices), None)
        # verify_token checks the window and last_t, then saves the device (last_t, drift,
        # throttling) on success and on failure alike.
        if device is None or not device.verify_token(code):
            challenge.save(update_fields=["attempts"])
            return _error(401, "invalid_code")
        challenge.consumed_at = now
        challenge.save(update_fields=["attempts", "consumed_at"])
        session_token = _new_session(challenge.user)
    return JsonResponse({"status": "authenticated", "session_token": session_token})
