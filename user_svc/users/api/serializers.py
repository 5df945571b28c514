"""Shapes of user_svc's API: what each operation accepts and answers. No logic beyond field checks."""

from __future__ import annotations

from rest_framework import serializers

from users.models import ApiKey, ApiKeyPermission, User

# Bounds the work a password hasher does for one request; far above any real password.
PASSWORD_MAX_LENGTH = 4096


def password_field(**kwargs: object) -> serializers.CharField:
    return serializers.CharField(
        write_only=True,
        trim_whitespace=False,
        max_length=PASSWORD_MAX_LENGTH,
        style={"input_type": "password"},
        **kwargs,
    )


class RegisterSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = password_field()
    display_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")


class RegisterAcceptedSerializer(serializers.Serializer):
    message = serializers.CharField(help_text="The same whether or not the address already has an account")


class EmailConfirmSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=1024, help_text="The token the confirmation mail carries")


class EmailConfirmedSerializer(serializers.Serializer):
    email = serializers.EmailField()
    email_confirmed_at = serializers.DateTimeField()


class LoginSerializer(serializers.Serializer):
    # Not EmailField: any unknown login is the same 401 (and counts against the throttle).
    email = serializers.CharField(max_length=254)
    password = password_field()


class RefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField()


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    token_type = serializers.CharField(default="Bearer")
    expires_in = serializers.IntegerField(help_text="Seconds the access token is valid")


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "email_confirmed_at", "display_name", "created_at", "updated_at"]
        read_only_fields = fields


class LoginResponseSerializer(TokenPairSerializer):
    user = UserSerializer()


class UserUpdateSerializer(serializers.Serializer):
    email = serializers.EmailField(
        max_length=254, required=False, help_text="A new address needs current_password; it starts unconfirmed"
    )
    display_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    current_password = password_field(required=False, help_text="Required to change the email")


class PasswordChangeSerializer(serializers.Serializer):
    current_password = password_field()
    new_password = password_field()


class ThrottleDetailsSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(
        choices=["ip", "account_ip", "account"],
        help_text="What is waiting: the client address, the account from this address, or the account everywhere",
    )
    retry_after_s = serializers.IntegerField(help_text="Seconds to wait (also the Retry-After header)")


class ThrottledSerializer(serializers.Serializer):
    """The platform's error shape, as a 429 for too many wrong passwords gives it."""

    code = serializers.ChoiceField(choices=["throttled"])
    message = serializers.CharField()
    details = ThrottleDetailsSerializer()


class ApiKeyCreateSerializer(serializers.Serializer):
    label = serializers.CharField(max_length=64, help_text="Your name for the key (where it is used)")
    permissions = serializers.ListField(
        child=serializers.ChoiceField(choices=ApiKeyPermission.choices),
        min_length=1,
        max_length=len(ApiKeyPermission.values),
        default=[ApiKeyPermission.READ.value],
        help_text='What the key may do: "read" (always) and "trade" (orders) when asked for; default ["read"]',
    )


class ApiKeySerializer(serializers.ModelSerializer):
    api_key = serializers.CharField(read_only=True, help_text="64 letters and digits: the X-MBX-APIKEY header")
    permissions = serializers.ListField(child=serializers.ChoiceField(choices=ApiKeyPermission.choices), read_only=True)
    last_used_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="The last signed request it made, to the minute; null if none"
    )

    class Meta:
        model = ApiKey
        fields = ["id", "label", "api_key", "permissions", "created_at", "last_used_at"]
        read_only_fields = fields


class ApiKeyCreatedSerializer(ApiKeySerializer):
    secret = serializers.CharField(
        read_only=True, help_text="Signs requests (HMAC-SHA256). Shown only in this answer: store it now"
    )

    class Meta(ApiKeySerializer.Meta):
        fields = ["id", "label", "api_key", "secret", "permissions", "created_at", "last_used_at"]
        read_only_fields = fields
