from django.urls import path

from signin import views

urlpatterns = [
    path("api/v1/login/verify", views.verify),
]
