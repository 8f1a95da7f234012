from django.urls import path

from . import views

urlpatterns = [
    path("mail/inbound/raw/", views.raw_inbound, name="mail-inbound-raw"),
    path("mail/inbound/mailgun/", views.mailgun_inbound, name="mail-inbound-mailgun"),
    path("mail/inbound/postmark/", views.postmark_inbound, name="mail-inbound-postmark"),
]
