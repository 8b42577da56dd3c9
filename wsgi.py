"""The object gunicorn serves: ``gunicorn wsgi:app`` (settings in gunicorn.conf.py)."""

from qrs import create_app

app = create_app()
