"""The sentences the visit page's script shows, translated on the server."""

from django.utils.translation import gettext as _


def visit_page_strings() -> dict[str, str]:
    return {
        "connecting": _("Connecting…"),
        "reconnecting": _("Connection lost. Reconnecting…"),
        "preview": _("Check your camera and microphone, then press “I'm ready”."),
        "waiting": _("Your doctor knows you are here. Please wait to be let in."),
        "doctorPresent": _("Your doctor is in the room."),
        "doctorNoPatient": _("The patient is not in the waiting room yet."),
        "doctorPatientConnected": _("The patient is connected but not ready yet."),
        "doctorPatientWaiting": _("The patient is waiting. Press Admit to start the visit."),
        "inCall": _("You are in the visit."),
        "peerLeft": _("The other participant has left. Waiting for them to come back…"),
        "peerReconnecting": _("The other participant’s connection dropped. Reconnecting…"),
        "ended": _("The visit has ended. You can close this page."),
        "confirmEnd": _("End the visit for both of you?"),
        "elapsed": _("Elapsed: %(time)s"),
        "qualityGood": _("Connection: good"),
        "qualityFair": _("Connection: fair, the video may stutter"),
        "qualityPoor": _("Connection: poor, try turning your camera off"),
        "muteMic": _("Mute microphone"),
        "unmuteMic": _("Unmute microphone"),
        "cameraOff": _("Turn camera off"),
        "cameraOn": _("Turn camera on"),
        "remoteMicOff": _("Microphone off"),
        "remoteCamOff": _("Camera off"),
        "mediaDenied": _(
            "The browser has not allowed the camera or the microphone. Click the camera icon "
            "in the address bar, choose “Allow”, then reload the page."
        ),
        "mediaMissing": _("No camera or microphone was found. Connect one and reload the page."),
        "mediaBusy": _(
            "The camera or the microphone is in use by another program. Close it and reload "
            "the page."
        ),
        "noWebRTC": _(
            "This browser does not support video calls. "
            "Use a recent Chrome, Edge, Firefox or Safari."
        ),
    }
