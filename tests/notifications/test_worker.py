import pytest
from django.core import mail
from django.core.management import call_command

from consulta.notifications.tasks import send_email_message

DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


# The worker closes its database connections when it stops: no wrapping transaction here.
@pytest.mark.django_db(transaction=True)
def test_the_worker_sends_mail_queued_in_the_database(settings):
    settings.TASKS = DATABASE_TASKS
    result = send_email_message.enqueue(subject="Hello", body="Body", to=["p@example.test"])
    assert mail.outbox == []  # queued, not sent by the request
    call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)
    assert [m.subject for m in mail.outbox] == ["Hello"]
    result.refresh()
    assert result.status == "SUCCESSFUL"
