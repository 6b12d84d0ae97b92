"""For tests and demos of calls of more than two: in the demo clinic, a video booking for now
of the first doctor with the first patient and the two other doctors of the group practice
(a third demo doctor is added the first time), with fresh sign-in links for all four."""

import json

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from consulta.accounts.demo import DEMO_PASSWORD, seed_demo
from consulta.accounts.models import CareTeam, StaffMember, User
from consulta.accounts.services import login_link_create
from consulta.scheduling import services
from consulta.scheduling.models import AppointmentType, ContactMode

THIRD_DOCTOR = ("chiara.galli@demo.consulta.test", "Chiara", "Galli", "Dr.")


class Command(BaseCommand):
    help = "Add a video visit for now with three doctors and the demo patient; print links."

    def handle(self, *args, **options):
        with transaction.atomic():
            demo = seed_demo(visits=0)
            email, first, last, title = THIRD_DOCTOR
            user = User.objects.filter(email=email).first() or User.objects.create_user(
                email, DEMO_PASSWORD, first_name=first, last_name=last
            )
            third, _ = StaffMember.objects.get_or_create(
                user=user,
                defaults={"clinic": demo.clinic, "role": StaffMember.Role.DOCTOR, "title": title},
            )
            CareTeam.objects.get(clinic=demo.clinic, kind=CareTeam.Kind.GROUP).members.add(third)
            second = (
                StaffMember.objects.filter(clinic=demo.clinic, role=StaffMember.Role.DOCTOR)
                .exclude(pk__in=[demo.doctor.pk, third.pk])
                .order_by("pk")
                .first()
            )
            kind = AppointmentType.objects.filter(
                clinic=demo.clinic, offers_video=True, is_active=True
            ).first()
            booking = services.booking_create(
                by=demo.doctor,
                clinician=demo.doctor,
                patient=demo.patient,
                kind=kind,
                starts_at=timezone.now(),
                contact_mode=ContactMode.VIDEO,
                participants=[second, third],
                outside_hours=True,
            )
        links = {
            "doctor": demo.links["doctor"],
            "patient": demo.links["patient"],
            "clinician": _link(second.user),
            "clinician2": _link(third.user),
        }
        peers = {
            "doctor": f"d{demo.doctor.pk}",
            "patient": f"p{demo.patient.pk}",
            "clinician": f"d{second.pk}",
            "clinician2": f"d{third.pk}",
        }
        self.stdout.write(
            json.dumps({"visit_id": str(booking.visit_id), "links": links, "peers": peers})
        )


def _link(user) -> str:
    return settings.PUBLIC_URL + reverse("login_link", args=[login_link_create(user=user)])
