from django import forms
from django.utils.translation import gettext_lazy as _

from consulta.calls.models import RingSettings

_VOLUME_ERROR = _("Choose a volume from 0 to 100.")


class RingSettingsForm(forms.Form):
    tone = forms.ChoiceField(
        label=_("Ringtone"),
        choices=RingSettings.Tone.choices,
        widget=forms.RadioSelect,
        error_messages={
            "required": _("Choose a ringtone."),
            "invalid_choice": _("Choose one of the ringtones."),
        },
    )
    volume = forms.IntegerField(
        label=_("Volume"),
        min_value=0,
        max_value=100,
        widget=forms.NumberInput(attrs={"type": "range", "step": 1}),
        error_messages={
            "required": _VOLUME_ERROR,
            "invalid": _VOLUME_ERROR,
            "min_value": _VOLUME_ERROR,
            "max_value": _VOLUME_ERROR,
        },
    )
