"""The demo clinic (consulta/accounts/demo.py): `consulta demo` may start any number of times."""

from datetime import timedelta

from django.utils import timezone

from consulta.accounts.demo import seed_demo
from consulta.visits.models import Visit


def test_each_start_of_the_demo_shows_one_visit_for_now(db):
    first = seed_demo(reuse_unstarted=True).visits[0]
    Visit.objects.filter(pk=first.pk).update(scheduled_at=timezone.now() - timedelta(days=2))
    again = seed_demo(reuse_unstarted=True)
    assert [v.pk for v in again.visits] == [first.pk]
    first.refresh_from_db()
    assert timezone.now() - first.scheduled_at < timedelta(minutes=1)
    assert Visit.objects.filter(status=Visit.Status.SCHEDULED).count() == 1

    # A visit someone started is left as it is: the next start adds a new one.
    Visit.objects.filter(pk=first.pk).update(status=Visit.Status.ENDED, ended_at=timezone.now())
    third = seed_demo(reuse_unstarted=True).visits[0]
    assert third.pk != first.pk
    assert Visit.objects.count() == 2


def test_seeding_without_reuse_adds_the_visits_asked_for(db):
    seed_demo(visits=2)
    assert len(seed_demo(visits=3).visits) == 3
    assert Visit.objects.count() == 5
