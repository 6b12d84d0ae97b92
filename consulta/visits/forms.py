from django import forms
from django.utils.translation import gettext_lazy as _

from consulta.patients.access import patients_visible_to
from consulta.patients.search import search_patients
from consulta.visits.models import RoomSettings


class VisitCreateForm(forms.Form):
    WHEN_NOW = "now"
    WHEN_LATER = "later"

    patient = forms.ModelChoiceField(
        label=_("Patient"),
        queryset=None,
        # Chosen from a search (visits/_patient_picker.html), never from a list of everyone.
        widget=forms.HiddenInput,
        error_messages={
            "required": _("Choose the patient."),
            "invalid_choice": _("This patient is not one of your patients."),
        },
    )
    when = forms.ChoiceField(
        label=_("When"),
        choices=[(WHEN_NOW, _("Now")), (WHEN_LATER, _("At a set time"))],
        initial=WHEN_NOW,
        widget=forms.RadioSelect,
    )
    scheduled_at = forms.DateTimeField(
        label=_("Date and time"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M"],
        error_messages={"invalid": _("Enter a valid date and time.")},
    )

    def __init__(self, *args, staff, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["patient"].queryset = startable_patients(staff)

    def clean(self):
        data = super().clean()
        if data.get("when") == self.WHEN_LATER and not data.get("scheduled_at"):
            self.add_error("scheduled_at", _("Choose the date and time of the visit."))
        if data.get("when") == self.WHEN_NOW:
            data["scheduled_at"] = None
        return data


def startable_patients(staff):
    """The patients a doctor may start a video visit with: theirs to see, not archived."""
    return patients_visible_to(staff).filter(archived_at__isnull=True)


PATIENT_CHOICES_SHOWN = 10


def patient_choices(staff, query: str, chosen=None) -> list:
    """The patients a search finds for the start form, the chosen one (kept after an error)
    first; a single match is chosen for the doctor."""
    found = []
    if query:
        found = list(
            search_patients(startable_patients(staff), query).order_by("last_name", "first_name")[
                :PATIENT_CHOICES_SHOWN
            ]
        )
    if chosen is not None and chosen not in found:
        found.insert(0, chosen)
    return found


class RoomSettingsForm(forms.ModelForm):
    class Meta:
        model = RoomSettings
        fields = [
            "shows_self_view",
            "shows_elapsed_time",
            "notify_when_doctor_enters",
            "notify_text",
            "notify_by_email",
            "notify_by_sms",
        ]


def patient_initial_from_guest(visit) -> dict | None:
    """The add-patient form's first and last name, from the name a guest was known by: the
    last word is taken for the last name; the doctor corrects what that gets wrong."""
    if visit is None or not visit.guest_name:
        return None
    first, _space, last = visit.guest_name.rpartition(" ")
    if not first:  # one word only
        return {"first_name": last}
    return {"first_name": first, "last_name": last}
