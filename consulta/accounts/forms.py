import zoneinfo

from django import forms
from django.utils.translation import gettext_lazy as _

from consulta.accounts.models import Clinic

# The zones a clinic in a supported country would use, first; every IANA zone is valid.
_COMMON_ZONES = ["Europe/Rome", "Europe/Paris", "Europe/Oslo", "Europe/London", "Europe/Dublin"]


def _zone_choices():
    others = sorted(zoneinfo.available_timezones() - set(_COMMON_ZONES))
    return [(zone, zone) for zone in _COMMON_ZONES + others]


class ClinicSettingsForm(forms.ModelForm):
    time_zone = forms.ChoiceField(label=_("time zone"), choices=_zone_choices)

    class Meta:
        model = Clinic
        fields = [
            "name",
            "time_zone",
            "default_language",
            "require_mfa",
            "join_minutes_before",
            "join_minutes_after",
        ]
