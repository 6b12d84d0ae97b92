from django import forms
from django.utils.translation import gettext_lazy as _

from consulta.accounts.models import StaffMember
from consulta.patients.access import visible_doctor_ids
from consulta.patients.identifiers import national_id_label
from consulta.patients.models import Patient, PatientBlock
from consulta.patients.services import default_invitation, invitation_hint


def limit_to_doctors_of(field: forms.ModelChoiceField, staff: StaffMember) -> None:
    """The doctors `staff` works with. A doctor's own name comes preselected, as does the only
    doctor a secretary works with; a secretary who works with several chooses one (the first
    of the list, preselected, filed patients under the wrong doctor unnoticed)."""
    field.queryset = StaffMember.objects.filter(pk__in=visible_doctor_ids(staff)).select_related(
        "user"
    )
    field.error_messages["required"] = _("Choose one of the doctors you work with.")
    if staff.is_doctor:
        field.initial = staff.pk
        return
    doctors = list(field.queryset.values_list("pk", flat=True)[:2])
    if len(doctors) == 1:
        field.initial = doctors[0]
    else:
        field.empty_label = _("Choose a doctor")


class PatientCreateForm(forms.Form):
    doctor = forms.ModelChoiceField(label=_("Associated doctor"), queryset=None, empty_label=None)
    first_name = forms.CharField(label=_("First name"), max_length=150)
    last_name = forms.CharField(label=_("Last name"), max_length=150)
    state = forms.ChoiceField(
        label=_("Regime"),
        choices=[
            (Patient.State.SSN, Patient.State.SSN.label),
            (Patient.State.SSN_TEMPORARY, Patient.State.SSN_TEMPORARY.label),
            (Patient.State.PRIVATE, Patient.State.PRIVATE.label),
        ],
    )
    national_id = forms.CharField(
        label=_("National identifier"),
        max_length=40,
        required=False,
        help_text=_("Required for national health service patients. It cannot be changed later."),
    )
    phone = forms.CharField(label=_("Mobile phone"), max_length=40, required=False)
    email = forms.EmailField(label=_("Email"), required=False)
    send_invitation = forms.BooleanField(
        label=_("Send an invitation to the patient"), required=False
    )
    invitation_text = forms.CharField(
        label=_("Invitation text"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )

    def __init__(self, *args, staff: StaffMember, **kwargs):
        super().__init__(*args, **kwargs)
        limit_to_doctors_of(self.fields["doctor"], staff)
        # For a patient new to the clinic: in the clinic's language.
        language = staff.clinic.default_language
        self.fields["invitation_text"].initial = default_invitation(language)
        self.fields["invitation_text"].help_text = invitation_hint(language)
        self.fields["national_id"].label = national_id_label(staff.clinic.country)

    def clean(self):
        data = super().clean()
        if data.get("send_invitation") and not data.get("email"):
            self.add_error("email", _("An invitation needs the patient's email address."))
        if data.get("send_invitation") and not (data.get("invitation_text") or "").strip():
            self.add_error("invitation_text", _("Write the invitation text."))
        return data


class ArchiveForm(forms.Form):
    reason = forms.ChoiceField(
        label=_("Reason"),
        choices=Patient.ArchiveReason.choices,
        widget=forms.RadioSelect,
        error_messages={
            "required": _("Choose why the patient is moved to the archive."),
            "invalid_choice": _("Choose why the patient is moved to the archive."),
        },
    )
    note = forms.CharField(
        label=_("Describe the reason"),
        max_length=500,
        required=False,
        help_text=_("Required when the reason is “Other”."),
    )

    def clean(self):
        data = super().clean()
        if data.get("reason") == Patient.ArchiveReason.OTHER and not data.get("note"):
            self.add_error("note", _("Describe the reason for archiving."))
        return data


class StateForm(forms.Form):
    state = forms.ChoiceField(
        label=_("State"),
        choices=[(s, s.label) for s in Patient.ACTIVE_SSN_STATES],
    )


class InviteForm(forms.Form):
    message = forms.CharField(
        label=_("Invitation text"),
        widget=forms.Textarea(attrs={"rows": 4}),
    )


class CorrectionForm(forms.Form):
    first_name = forms.CharField(label=_("First name"), max_length=150)
    last_name = forms.CharField(label=_("Last name"), max_length=150)
    national_id = forms.CharField(label=_("National identifier"), max_length=40, required=False)
    reason = forms.CharField(label=_("Reason for the correction"), max_length=500)

    def __init__(self, *args, country: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["national_id"].label = national_id_label(country)


class BlockForm(forms.Form):
    area = forms.ChoiceField(label=_("Area"), choices=PatientBlock.Area.choices)
    reason = forms.CharField(label=_("Reason"), max_length=500)


class ContactsForm(forms.Form):
    email = forms.EmailField(label=_("Email"), required=False)
    phone = forms.CharField(label=_("Mobile phone"), max_length=40, required=False)
    date_of_birth = forms.DateField(
        label=_("Date of birth"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
