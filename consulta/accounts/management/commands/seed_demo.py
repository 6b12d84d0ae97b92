import json

from django.core.management.base import BaseCommand

from consulta.accounts.demo import DEMO_PASSWORD, seed_demo


class Command(BaseCommand):
    help = "Create the demo clinic (once), a video visit for now, and print sign-in links."

    def add_arguments(self, parser):
        parser.add_argument("--visits", type=int, default=1, help="visits to add for now")
        parser.add_argument(
            "--reuse-unstarted",
            action="store_true",
            help="move the visits an earlier run added and nobody started to now, "
            "and add only the rest",
        )
        parser.add_argument(
            "--json", dest="as_json", action="store_true", help="print one JSON object"
        )

    def handle(self, *args, visits, reuse_unstarted: bool, as_json: bool, **options):
        demo = seed_demo(visits=visits, reuse_unstarted=reuse_unstarted)
        if as_json:
            self.stdout.write(_json_dump(demo))
            return
        self.stdout.write(self.style.SUCCESS(f"Demo clinic: {demo.clinic.name}"))
        self.stdout.write("One-time sign-in links (valid 24 hours, each works once):")
        labels = {
            "doctor": f"Doctor  {demo.doctor}",
            "patient": f"Patient {demo.patient}",
            "doctor2": "Second doctor",
            "secretary": "Secretary",
            "clinic_admin": "Clinic administrator",
        }
        for key, url in demo.links.items():
            self.stdout.write(f"  {labels.get(key, key):<28} {url}")
        self.stdout.write(
            f"Staff can also sign in with their email and the password {DEMO_PASSWORD!r}; "
            "patients sign in with a code sent by email (printed by the worker below)."
        )


def _json_dump(demo) -> str:
    return json.dumps(
        {
            "clinic_id": demo.clinic.pk,
            "visit_ids": [str(v.pk) for v in demo.visits],
            "links": demo.links,
        }
    )
