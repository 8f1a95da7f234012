"""Signing in and out of Studio: Django's auth views with Studio's own templates."""

from django.contrib.auth import views as auth_views

login = auth_views.LoginView.as_view(
    template_name="registration/login.html", redirect_authenticated_user=True, next_page="studio-index"
)
logout = auth_views.LogoutView.as_view(next_page="login")
