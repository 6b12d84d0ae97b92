"""The sentences the visit page's script shows, translated on the server."""

from django.utils.translation import gettext as _


def call_screen_strings() -> dict[str, str]:
    """The sentences both call screens show, the video visit's and the internal call's
    (js/call-screen.js); each page's own strings include them."""
    return {
        "connecting": _("Connecting…"),
        "reconnecting": _("Connection lost. Reconnecting…"),
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


def visit_page_strings() -> dict[str, str]:
    return {
        **call_screen_strings(),
        "preview": _("Check your camera and microphone, then press “I'm ready”."),
        "previewEarly": _(
            "Check your camera and microphone while you wait: you can press “I'm ready” when "
            "the room opens."
        ),
        "joinClosed": _("You can no longer join this visit."),
        "waiting": _("Your doctor knows you are here. Please wait to be let in."),
        "doctorPresent": _("Your doctor is in the room."),
        "doctorNoPatient": _("The patient is not in the waiting room yet."),
        "doctorPatientConnected": _("The patient is connected but not ready yet."),
        "doctorPatientWaiting": _("The patient is waiting. Press Admit to start the visit."),
        "clinicianWaiting": _("The patient is waiting. The visit’s doctor will let them in."),
        "notSent": _(
            "Not connected to the room at this moment: the message was not sent. Try again."
        ),
        "youLeft": _("You have left the call. The others can go on without you."),
        "inCall": _("You are in the visit."),
        "peerLeft": _("The other participant has left. Waiting for them to come back…"),
        "openOtherVisit": _("Open that visit"),
        "openCall": _("Open that call"),
        "settingsNotSaved": _(
            "The settings could not be saved: check the connection and try again."
        ),
        "guestOpened": _("%(name)s opened the link at %(time)s."),
        "peerReconnecting": _("The other participant’s connection dropped. Reconnecting…"),
        "ended": _("The visit has ended. You can close this page."),
        "confirmEnd": _("End the visit for everyone?"),
    }


def nettest_strings() -> dict[str, str]:
    """The connection test's sentences (templates/visits/_nettest.html, js/nettest.js)."""
    return {
        "connecting": _("Connecting to the server…"),
        "probing": _("Measuring the delay…"),
        "uploading": _("Measuring the upload speed…"),
        "downloading": _("Measuring the download speed…"),
        "finished": _("Test finished."),
        "failed": _(
            "The connection to the server failed. Check that you are online, turn off a VPN "
            "if you use one, or try another network (for example your phone’s mobile data "
            "instead of Wi-Fi), then test again. If it still fails, call the clinic."
        ),
        "interrupted": _("The test was interrupted before it finished. Please test again."),
        "noWebRTC": _(
            "This browser cannot make video calls. Use a recent Chrome, Edge, Firefox or Safari."
        ),
        "good": _("Good: your connection is fine for a video visit."),
        "stutter": _(
            "Video may stutter: the visit should work, but the picture may freeze at times. "
            "Close other programs that use the internet, or move closer to your Wi-Fi router."
        ),
        "audio": _(
            "Audio only recommended: your connection is too weak for steady video. Turn your "
            "camera off during the visit, or try another network."
        ),
        "ms": _("%(value)s ms"),
        "mbps": _("%(value)s Mbit/s"),
        "notMeasured": _("not measured"),
    }
