"""Shapes of user_svc's API: what each operation accepts and answers. No logic beyond field checks."""

from __future__ import annotations

from rest_framework import serializers

from users.models import User

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
        fields = ["id", "email", "display_name", "created_at", "updated_at"]
        read_only_fields = fields


class LoginResponseSerializer(TokenPairSerializer):
    user = UserSerializer()


class UserUpdateSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254, required=False)
    display_name = serializers.CharField(max_length=150, required=False, allow_blank=True)


class PasswordChangeSerializer(serializers.Serializer):
    current_password = password_field()
    new_password = password_field()
