from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from consulta.accounts.models import StaffMember
from consulta.audit.models import AuditEvent
from consulta.lib.errors import DomainError
from consulta.patients import services
from consulta.patients.access import (
    care_teams,
    patient_for_operator,
    patient_for_staff,
    patients_in_tab,
    patients_visible_to,
    registry_staff,
    tabs_for,
)
from consulta.patients.export import EXPORT_FILTERS, export_response
from consulta.patients.forms import (
    ArchiveForm,
    BlockForm,
    ContactsForm,
    CorrectionForm,
    InviteForm,
    PatientCreateForm,
    StateForm,
)
from consulta.patients.identifiers import national_id_name
from consulta.patients.search import (
    COUNT_LIMIT,
    SORTS,
    patients_page,
    search_patients,
    sort_patients,
)
from consulta.visits.access import guest_visit_for_doctor
from consulta.visits.forms import RoomSettingsForm, patient_initial_from_guest
from consulta.visits.services import room_settings_of, visit_guest_to_new_patient

PAGE_SIZE = 25
TAB_LABELS = {
    "mine": gettext_lazy("My patients"),
    "group": gettext_lazy("Group practice"),
    "network": gettext_lazy("Network"),
    "private": gettext_lazy("Private"),
    "archive": gettext_lazy("Archive"),
}


# The same address gives the whole page, or the results alone to the search as you type: Vary
# keeps the browser from showing the cached results alone when the user comes Back.
@login_required
@vary_on_headers("X-Requested-With")
def patient_list(request, tab=None):
    staff = registry_staff(request.staff)
    teams = care_teams(staff)
    tabs = tabs_for(staff, teams)
    tab = tab or tabs[0]
    patients = patients_in_tab(staff, tab, teams)
    query = request.GET.get("q", "").strip()[:100]
    patients = search_patients(patients, query)
    doctors = []
    if tab in ("group", "network"):
        doctors = StaffMember.objects.filter(
            pk__in=patients_in_tab(staff, tab, teams).values("doctor_id")
        ).select_related("user")
        doctor_filter = request.GET.get("doctor", "")
        if doctor_filter.isdigit():
            patients = patients.filter(doctor_id=int(doctor_filter))
    sort = request.GET.get("sort", "name")
    page = patients_page(
        sort_patients(patients, sort),
        request.GET.get("page"),
        PAGE_SIZE,
        count_limit=COUNT_LIMIT if query else None,
    )
    context = {
        "tab": tab,
        "tabs": [(t, TAB_LABELS[t]) for t in tabs],
        "page": page,
        "query": query,
        "sort": sort if sort in SORTS else "name",
        "doctors": doctors,
        "doctor_filter": request.GET.get("doctor", ""),
        "can_restore": staff.is_doctor,
        "can_change_state": staff.is_doctor,
        "export_filters": list(EXPORT_FILTERS.items()),
    }
    if request.headers.get("X-Requested-With") == "fetch":
        return render(request, "patients/_results.html", context)
    return render(request, "patients/list.html", context)


@login_required
def patient_create(request):
    staff = registry_staff(request.staff)
    # From a video visit with a guest: the form starts with their name, the visit follows.
    guest_visit_id = request.POST.get("visit") or request.GET.get("visit")
    guest_visit = guest_visit_for_doctor(staff, guest_visit_id) if guest_visit_id else None
    form = PatientCreateForm(
        request.POST or None, staff=staff, initial=patient_initial_from_guest(guest_visit)
    )
    # From the calendar's booking form only: a local address, never another site.
    back_to_booking = request.POST.get("next") or request.GET.get("next") or ""
    if not back_to_booking.startswith(reverse("booking_new") + "?"):
        back_to_booking = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        fields = {
            name: data[name]
            for name in (
                "doctor",
                "first_name",
                "last_name",
                "state",
                "national_id",
                "phone",
                "email",
            )
        }
        try:
            if guest_visit is not None:  # the record and the visit it takes, together
                patient = visit_guest_to_new_patient(by=staff, visit=guest_visit, **fields)
            else:
                patient = services.patient_create(by=staff, **fields)
        except services.DuplicateNationalId as duplicate:
            form.add_error("national_id", _duplicate_message(staff, duplicate))
        except DomainError as refusal:
            field = {
                "invalid_national_id": "national_id",
                "invalid_phone": "phone",
                "not_mobile": "phone",
            }.get(refusal.code)
            form.add_error(field, refusal.message)
        else:
            messages.success(request, _("%(name)s has been added.") % {"name": patient.full_name})
            if data["send_invitation"]:
                _invite(request, staff, patient, data["invitation_text"])
            # Added while booking: back to the booking, this patient chosen.
            if back_to_booking and guest_visit is None:
                return redirect(f"{back_to_booking}&patient={patient.pk}")
            return redirect("patient_detail", patient.pk)
    return render(
        request,
        "patients/create.html",
        {"form": form, "next": back_to_booking, "guest_visit": guest_visit},
        status=400 if form.errors else 200,
    )


def _duplicate_message(staff, duplicate):
    existing = duplicate.existing
    if patients_visible_to(staff).filter(pk=existing.pk).exists():
        return format_html(
            '{} <a href="{}">{}</a>',
            duplicate.message,
            reverse("patient_detail", args=[existing.pk]),
            _("Open the record"),
        )
    return _(
        "A patient with this %(national_id)s is already registered in the clinic, "
        "with a doctor you do not work with."
    ) % {"national_id": national_id_name(staff.clinic.country)}


@login_required
def patient_detail(request, pk):
    staff = registry_staff(request.staff)
    patient = patient_for_staff(staff, pk)
    return _render_detail(request, staff, patient)


def _render_detail(request, staff, patient, *, archive_form=None, status=200):
    """The record page; `archive_form`, bound, when archiving was refused for what the form
    holds, so that the choice stays made and the error stands beside its field."""
    access_log = None
    if staff.pk == patient.doctor_id:
        # Who else opened or changed the record: the doctor's own visits would drown it.
        access_log = (
            AuditEvent.objects.filter(patient=patient)
            .exclude(actor=request.user)
            .select_related("actor")[:50]
        )
    return render(
        request,
        "patients/detail.html",
        {
            "patient": patient,
            "visits": patient.visits.select_related("doctor__user").order_by("-scheduled_at")[:20],
            "care_teams": patient.doctor.care_teams.all(),
            "blocks": patient.blocks.filter(lifted_at__isnull=True),
            "state_form": StateForm(initial={"state": patient.state}),
            "archive_form": archive_form or ArchiveForm(),
            "invite_form": _invite_form(patient),
            "contacts_form": ContactsForm(
                initial={
                    "email": patient.email,
                    "phone": patient.phone,
                    "date_of_birth": patient.date_of_birth,
                }
            ),
            "access_log": access_log,
            "room_form": (
                RoomSettingsForm(instance=room_settings_of(patient)) if staff.is_doctor else None
            ),
            "can_change_state": staff.is_doctor,
            "can_restore": staff.is_doctor,
        },
        status=status,
    )


def _act(request, pk, action, success):
    """Run one registry action on a visible patient; refusals come back as messages."""
    staff = registry_staff(request.staff)
    patient = patient_for_staff(staff, pk, action="patient.open_for_change")
    try:
        action(staff, patient)
    except DomainError as refusal:
        messages.error(request, refusal.message)
    else:
        messages.success(request, success % {"name": patient.full_name})
    return redirect("patient_detail", pk)


@login_required
@require_POST
def patient_change_state(request, pk):
    form = StateForm(request.POST)
    state = form.cleaned_data["state"] if form.is_valid() else ""
    return _act(
        request,
        pk,
        lambda staff, p: services.patient_change_state(by=staff, patient=p, state=state),
        _("The state of %(name)s has been changed."),
    )


@login_required
@require_POST
def patient_archive(request, pk):
    form = ArchiveForm(request.POST)
    if not form.is_valid():
        staff = registry_staff(request.staff)
        patient = patient_for_staff(staff, pk, action="patient.open_for_change")
        if patient.is_archived:
            messages.error(request, _("This patient is already in the archive."))
            return redirect("patient_detail", pk)
        return _render_detail(request, staff, patient, archive_form=form, status=400)
    return _act(
        request,
        pk,
        lambda staff, p: services.patient_archive(by=staff, patient=p, **form.cleaned_data),
        _("%(name)s has been moved to the archive."),
    )


@login_required
@require_POST
def patient_update_contacts(request, pk):
    form = ContactsForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("patient_detail", pk)
    return _act(
        request,
        pk,
        lambda staff, p: services.patient_update_contacts(by=staff, patient=p, **form.cleaned_data),
        _("The contacts of %(name)s have been saved."),
    )


@login_required
@require_POST
def patient_restore(request, pk):
    return _act(
        request,
        pk,
        lambda staff, p: services.patient_restore(by=staff, patient=p),
        _("%(name)s is back on the active list."),
    )


@login_required
def patient_delete(request, pk):
    staff = registry_staff(request.staff)
    patient = patient_for_staff(staff, pk, action="patient.open_for_change")
    back = _registry_page(request.POST.get("next") or request.GET.get("next"))
    if request.method == "POST":
        name, archived = patient.full_name, patient.is_archived
        try:
            services.patient_delete(by=staff, patient=patient)
        except DomainError as refusal:
            messages.error(request, refusal.message)
            return redirect("patient_detail", pk)
        messages.success(request, _("%(name)s has been deleted for good.") % {"name": name})
        # Back to the list the trash icon was on; else the archive, or the first tab.
        if back:
            return redirect(back)
        return redirect("patient_list_tab", "archive") if archived else redirect("patient_list")
    return render(request, "patients/confirm_delete.html", {"patient": patient, "back": back})


def _invite_form(patient) -> InviteForm:
    """The record's invitation: its text starts in the patient's language, and says so."""
    language = services.invitation_language(patient)
    form = InviteForm(initial={"message": services.default_invitation(language)})
    form.fields["message"].help_text = services.invitation_hint(language)
    return form


def _registry_page(path: str | None) -> str:
    """`path` if it is one of the registry's own pages (a list to go back to), else ""."""
    return path if path and path.startswith("/patients/") and "//" not in path else ""


@login_required
@require_POST
def patient_invite(request, pk):
    staff = registry_staff(request.staff)
    patient = patient_for_staff(staff, pk, action="patient.open_for_change")
    # The text as the staff member read and edited it on the record (the list's "Invite"
    # leads there): nothing is sent to a patient from one click.
    form = InviteForm(request.POST)
    if form.is_valid():
        _invite(request, staff, patient, form.cleaned_data["message"])
    else:
        messages.error(request, _("Write the invitation text."))
    return redirect(
        _registry_page(request.POST.get("next")) or reverse("patient_detail", args=[pk])
    )


def _invite(request, staff, patient, message):
    try:
        services.patient_invite(by=staff, patient=patient, message=message)
    except DomainError as refusal:
        messages.error(request, refusal.message)
    else:
        messages.success(
            request, _("An invitation has been sent to %(email)s.") % {"email": patient.email}
        )


@login_required
def patient_export(request):
    staff = registry_staff(request.staff)
    selection = request.GET.get("filter", "all")
    if selection not in EXPORT_FILTERS:
        raise Http404
    return export_response(staff, selection)


@login_required
def patient_blocks(request, pk):
    """Operators block or unblock a patient's own actions, area by area."""
    patient = patient_for_operator(request.user, pk)
    form = BlockForm(request.POST or None)
    if request.method == "POST":
        try:
            if "lift" in request.POST:
                lift = request.POST["lift"]
                block = patient.blocks.filter(pk=lift).first() if lift.isdigit() else None
                if block is None:
                    raise Http404
                services.patient_unblock(operator=request.user, block=block)
                messages.success(request, _("The block has been lifted."))
                return redirect("patient_blocks", pk)
            if form.is_valid():
                services.patient_block(operator=request.user, patient=patient, **form.cleaned_data)
                messages.success(request, _("The patient has been blocked."))
                return redirect("patient_blocks", pk)
        except DomainError as refusal:
            form.add_error(None, refusal.message)
    return render(
        request,
        "patients/blocks.html",
        {
            "patient": patient,
            "form": form,
            "blocks": patient.blocks.select_related("created_by", "lifted_by"),
        },
        status=400 if form.errors else 200,
    )


@login_required
def patient_correct(request, pk):
    patient = patient_for_operator(request.user, pk)
    form = CorrectionForm(
        request.POST or None,
        country=patient.clinic.country,
        initial={
            "first_name": patient.first_name,
            "last_name": patient.last_name,
            "national_id": patient.national_id,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.patient_correct_identity(
                operator=request.user, patient=patient, **form.cleaned_data
            )
        except DomainError as refusal:
            form.add_error(None, refusal.message)
        else:
            messages.success(
                request,
                _("The identity of %(name)s has been corrected.") % {"name": patient.full_name},
            )
            return redirect("admin:patients_patient_change", patient.pk)
    return render(
        request,
        "patients/correct.html",
        {"patient": patient, "form": form},
        status=400 if form.errors else 200,
    )
