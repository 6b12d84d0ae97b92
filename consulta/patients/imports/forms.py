from django import forms
from django.utils.translation import gettext_lazy as _

from consulta.accounts.models import StaffMember
from consulta.patients.forms import limit_to_doctors_of
from consulta.patients.models import PatientImport


class ImportForm(forms.Form):
    format = forms.ChoiceField(
        label=_("Kind of file"),
        choices=PatientImport.Format.choices,
        widget=forms.RadioSelect,
        initial=PatientImport.Format.LIST,
    )
    doctor = forms.ModelChoiceField(label=_("Doctor"), queryset=None, empty_label=None)
    file = forms.FileField(
        label=_("File (CSV or XLSX)"),
        error_messages={
            "required": _("Choose the file to import."),
            "empty": _("The file is empty."),
        },
    )
    archive_missing = forms.BooleanField(
        label=_("Archive patients who are no longer my assisted patients"),
        required=False,
        help_text=_(
            "Only for the regional list: patients missing from it are moved to the "
            "archive as revoked."
        ),
    )

    def __init__(self, *args, staff: StaffMember, **kwargs):
        super().__init__(*args, **kwargs)
        limit_to_doctors_of(self.fields["doctor"], staff)
