from django import forms
from django.utils.translation import gettext_lazy as _

from consulta.patients.access import patients_visible_to
from consulta.visits.models import RoomSettings


class VisitCreateForm(forms.Form):
    WHEN_NOW = "now"
    WHEN_LATER = "later"

    patient = forms.ModelChoiceField(
        label=_("Patient"),
        queryset=None,
        empty_label=_("Choose a patient"),
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
        self.fields["patient"].queryset = patients_visible_to(staff).order_by(
            "last_name", "first_name"
        )

    def clean(self):
        data = super().clean()
        if data.get("when") == self.WHEN_LATER and not data.get("scheduled_at"):
            self.add_error("scheduled_at", _("Choose the date and time of the visit."))
        if data.get("when") == self.WHEN_NOW:
            data["scheduled_at"] = None
        return data


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
