from __future__ import annotations

from django.urls import path
from shop import views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("invoice/<int:number>/", views.invoice, name="invoice"),
]
