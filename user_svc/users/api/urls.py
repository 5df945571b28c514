"""API routes of user_svc."""

from django.urls import path

from common.api import ApiRootView
from users.api import views

urlpatterns = [
    path(
        "",
        ApiRootView.as_view(
            endpoints={
                "register": "auth-register",
                "confirm_email": "auth-confirm-email",
                "login": "auth-login",
                "refresh": "auth-refresh",
                "logout": "auth-logout",
                "me": "users-me",
                "password": "users-me-password",
                "api_keys": "users-me-api-keys",
                "jwks": "jwks",
            }
        ),
        name="api-root",
    ),
    path("auth/register", views.RegisterView.as_view(), name="auth-register"),
    path("auth/confirm-email", views.ConfirmEmailView.as_view(), name="auth-confirm-email"),
    path("auth/login", views.LoginView.as_view(), name="auth-login"),
    path("auth/refresh", views.RefreshView.as_view(), name="auth-refresh"),
    path("auth/logout", views.LogoutView.as_view(), name="auth-logout"),
    path("users/me", views.MeView.as_view(), name="users-me"),
    path("users/me/password", views.PasswordChangeView.as_view(), name="users-me-password"),
    path("users/me/api-keys", views.ApiKeysView.as_view(), name="users-me-api-keys"),
    path("users/me/api-keys/<uuid:key_id>", views.ApiKeyView.as_view(), name="users-me-api-key"),
]
