"""The sentences the calls' scripts show, translated on the server."""

from django.utils.translation import gettext as _

from consulta.visits.strings import call_screen_strings


def presence_strings() -> dict[str, str]:
    return {
        "online": _("Online"),
        "offline": _("Offline"),
        "in_call": _("In a call"),
        "reasonOffline": _("Offline: cannot be called now."),
        "reasonInCall": _("In a call: try again later."),
        "reasonYou": _("This is you."),
    }


def incoming_call_strings() -> dict[str, str]:
    return {
        "isCalling": _("%(name)s is calling you"),
        "failed": _("The call could not be answered. Please try again."),
    }


def call_page_strings() -> dict[str, str]:
    return {
        **call_screen_strings(),
        "calling": _("Calling %(name)s…"),
        "ringingYou": _("%(name)s is calling you."),
        "waitingForPeer": _("Waiting for %(name)s to join…"),
        "inCall": _("You are in the call."),
        "peerLeft": _("%(name)s has left. Waiting for them to come back…"),
        "peerReconnecting": _("%(name)s’s connection dropped. Reconnecting…"),
        "declined": _("%(name)s declined."),
        "missed": _("No answer."),
        "cancelled": _("The call was cancelled."),
        "ended": _("The call has ended."),
        "cancel": _("Cancel call"),
        "hangUp": _("Hang up"),
    }


def ring_settings_strings() -> dict[str, str]:
    return {"play": _("Play"), "stop": _("Stop")}
