"""seed_peer N OUT.csv: N users, each with a confirmed TOTP device and one open challenge.

OUT.csv gets one line per user, `challenge_token,secret_base32`, no header.
"""
import base64
import csv
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from signin.models import Challenge
from signin.tokens import new_token, token_hash

BATCH = 5000
CHALLENGE_LIFETIME = timedelta(hours=1)


class Command(BaseCommand):
    help = "Create N users with a TOTP device and an open sign-in challenge each."

    def add_arguments(self, parser):
        parser.add_argument("count", type=int)
        parser.add_argument("out", help="CSV file to write: challenge_token,secret_base32")

    def handle(self, count, out, **options):
        if count < 1:
            raise CommandError("count must be at least 1")
        User = get_user_model()
        now = timezone.now()
        expires_at = now + CHALLENGE_LIFETIME
        # Every user gets the same unusable password: no slow hashing per user.
        password = make_password(None)
        run = secrets.token_hex(4)  # usernames stay unique when seeding twice

        with transaction.atomic(), open(out, "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            for start in range(0, count, BATCH):
                n = min(BATCH, count - start)
                users = User.objects.bulk_create(
                    User(username=f"peer-{run}-{start + i}", password=password, date_joined=now)
                    for i in range(n)
                )
                keys = [secrets.token_bytes(20) for _ in range(n)]
                tokens = [new_token() for _ in range(n)]
                TOTPDevice.objects.bulk_create(
                    TOTPDevice(
                        user_id=user.pk,
                        name="default",
                        confirmed=True,
                        key=key.hex(),
                        step=30,
                        t0=0,
                        digits=6,
                        tolerance=1,
                        drift=0,
                    )
                    for user, key in zip(users, keys)
                )
                Challenge.objects.bulk_create(
                    Challenge(token_hash=token_hash(token), user_id=user.pk, expires_at=expires_at)
                    for user, token in zip(users, tokens)
                )
                writer.writerows(
                    (token, base64.b32encode(key).decode("ascii").rstrip("="))
                    for token, key in zip(tokens, keys)
                )
        # Fresh statistics, so the planner sees the tables as they now are.
        with connection.cursor() as cursor:
            for model in (User, TOTPDevice, Challenge):
                cursor.execute(f'ANALYZE "{model._meta.db_table}"')
        self.stdout.write(f"seeded {count} users into {out}")
