from datetime import UTC, date, datetime, timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consulta.scheduling.models import AppointmentType, ContactMode, TemplateBlock, WeekTemplate

CONTACT_CHOICES = [("", _("The type's default")), *ContactMode.choices]


def parse_slot_start(value: str) -> datetime | None:
    """A slot's start as the pages send it: seconds since the epoch (UTC)."""
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


class AppointmentTypeForm(forms.ModelForm):
    class Meta:
        model = AppointmentType
        fields = [
            "name",
            "clinician",
            "duration_minutes",
            "colour",
            "offers_in_person",
            "offers_video",
            "offers_phone",
            "default_contact_mode",
            "bookable_online",
            "online_audience",
            "min_notice_hours",
            "max_days_ahead",
            "cancel_deadline_hours",
            "max_open_bookings",
            "patient_information",
            "notify_on_booking",
            "notify_on_change",
            "notify_on_cancellation",
            "is_active",
        ]
        widgets = {
            "colour": forms.TextInput(attrs={"type": "color"}),
            "patient_information": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, doctors, clinic_wide: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["clinician"].queryset = doctors
        self.fields["clinician"].required = not clinic_wide
        self.fields["clinician"].empty_label = _("Every clinician of the clinic")

    def _post_clean(self):
        # The service validates and saves (it owns the rules); skip the model's own pass.
        pass


class BlockForm(forms.Form):
    weekday = forms.TypedChoiceField(
        label=_("Weekday"), choices=TemplateBlock.Weekday.choices, coerce=int
    )
    start_time = forms.TimeField(label=_("From"), widget=forms.TimeInput(attrs={"type": "time"}))
    end_time = forms.TimeField(label=_("To"), widget=forms.TimeInput(attrs={"type": "time"}))
    types = forms.ModelMultipleChoiceField(
        label=_("Appointment types"),
        queryset=AppointmentType.objects.none(),
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, types, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["types"].queryset = types


class TemplateForm(forms.Form):
    name = forms.CharField(label=_("Name of the week template"), max_length=100)


class WorkPlanForm(forms.Form):
    template = forms.ModelChoiceField(
        label=_("Week template"), queryset=WeekTemplate.objects.none()
    )
    start_date = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    end_date = forms.DateField(label=_("To"), widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, templates, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = templates


class AbsenceForm(forms.Form):
    start_date = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    end_date = forms.DateField(label=_("To"), widget=forms.DateInput(attrs={"type": "date"}))
    reason = forms.CharField(label=_("Reason"), max_length=200, required=False)


class BookingForm(forms.Form):
    """Staff book a patient: the slot's start comes from the calendar, or a date and time
    typed in (then `outside_hours` must be ticked for a time off the template)."""

    patient = forms.IntegerField(widget=forms.HiddenInput)
    kind = forms.ModelChoiceField(
        label=_("Appointment type"), queryset=AppointmentType.objects.none()
    )
    contact_mode = forms.ChoiceField(
        label=_("Contact mode"), choices=CONTACT_CHOICES, required=False
    )
    starts_at = forms.DateTimeField(
        label=_("Date and time"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M"],
    )
    outside_hours = forms.BooleanField(
        label=_("Book outside the working hours on purpose"), required=False
    )
    duration_minutes = forms.IntegerField(
        label=_("Duration (minutes)"),
        required=False,
        min_value=5,
        max_value=480,
        help_text=_("Leave empty for the appointment type's duration."),
    )
    participants = forms.ModelMultipleChoiceField(
        label=_("Additional participants"),
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Other doctors of the group practice who join a video visit."),
    )
    notes_for_patient = forms.CharField(
        label=_("Notes shared with the patient"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    internal_notes = forms.CharField(
        label=_("Internal notes (staff only)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args, types, colleagues, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].queryset = types
        self.fields["participants"].queryset = colleagues

    def clean_starts_at(self):
        value = self.cleaned_data["starts_at"]
        # Typed in the clinic's time zone (the active one); stored in UTC.
        return value if timezone.is_aware(value) else timezone.make_aware(value)


class ChangeBookingForm(forms.Form):
    kind = forms.ModelChoiceField(
        label=_("Appointment type"), queryset=AppointmentType.objects.none()
    )
    contact_mode = forms.ChoiceField(label=_("Contact mode"), choices=ContactMode.choices)
    starts_at = forms.DateTimeField(
        label=_("Date and time"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M"],
    )
    outside_hours = forms.BooleanField(
        label=_("Book outside the working hours on purpose"), required=False
    )

    def __init__(self, *args, types, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].queryset = types


class CancelForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=300, required=False)


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())
