"""Settings shared by the MAILERS settings module and the legacy EMAIL_* one."""

from __future__ import annotations

SECRET_KEY = "mailpost-test-project-key-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["localhost"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "mailpost.integrations.django",
    "shop",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "mysite.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_I18N = True
USE_TZ = True
LANGUAGE_CODE = "en-us"

DEFAULT_FROM_EMAIL = "Shop <shop@example.com>"
SERVER_EMAIL = "server@example.com"
ADMINS = ["ops@example.com"]
MANAGERS = ["boss@example.com", "Deputy <deputy@example.com>"]
EMAIL_SUBJECT_PREFIX = "[Shop] "
