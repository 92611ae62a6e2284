from django.conf import settings
from django.db import models


class Challenge(models.Model):
    """An open sign-in waiting for its second step (the password step happened before).

    The token is handed to the client once; only its SHA-256 (hex) is stored.
    """

    MAX_ATTEMPTS = 5

    token_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField()
    attempts = models.IntegerField(default=0)
    consumed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"challenge {self.pk} for user {self.user_id}"
