"""The project's app: views that send mail with mailpost instead of django.core.mail."""
