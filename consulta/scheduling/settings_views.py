"""Calendar configuration: online or not, the iCal feed, appointment types, week templates
and their blocks, work plans, absences, and why a patient cannot book online."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from consulta.accounts.models import StaffMember
from consulta.lib.errors import DomainError
from consulta.patients.access import patients_visible_to
from consulta.patients.search import search_patients
from consulta.scheduling import services
from consulta.scheduling.access import (
    appointment_type_for_config,
    appointment_types_for_config,
    configurable_doctors,
)
from consulta.scheduling.forms import (
    AbsenceForm,
    AppointmentTypeForm,
    BlockForm,
    TemplateForm,
    WorkPlanForm,
)
from consulta.scheduling.models import (
    Absence,
    AppointmentType,
    Calendar,
    TemplateBlock,
    WeekTemplate,
    WorkPlan,
)


def _doctor(request):
    staff = request.staff
    doctors = list(configurable_doctors(staff))  # 404 for secretaries, patients, outsiders
    wanted = request.POST.get("doctor") or request.GET.get("doctor") or ""
    doctor = next((d for d in doctors if str(d.pk) == wanted), None)
    return staff, doctors, doctor or (staff if staff.is_doctor else doctors[0] if doctors else None)


def _settings_url(doctor) -> str:
    return f"{reverse('calendar_settings')}?doctor={doctor.pk}"


def _types_offered(staff, doctor):
    return appointment_types_for_config(staff).filter(is_active=True).filter(
        clinician__in=[doctor]
    ) | AppointmentType.objects.filter(
        clinic_id=staff.clinic_id, clinician__isnull=True, is_active=True
    )


@login_required
def calendar_settings(request):
    staff, doctors, doctor = _doctor(request)
    if doctor is None:
        return render(request, "scheduling/settings.html", {"doctors": doctors, "doctor": None})
    # Read only: a calendar row is created the first time it is changed, not when seen.
    calendar = Calendar.objects.filter(clinician=doctor).first() or Calendar(clinician=doctor)
    templates = WeekTemplate.objects.filter(clinician=doctor).prefetch_related(
        "blocks__appointment_types"
    )
    types = _types_offered(staff, doctor)
    context = {
        "doctors": doctors,
        "doctor": doctor,
        "calendar": calendar,
        "types": appointment_types_for_config(staff).select_related("clinician__user"),
        "templates": templates,
        "block_form": BlockForm(types=types),
        "template_form": TemplateForm(),
        "plan_form": WorkPlanForm(templates=templates),
        "plans": WorkPlan.objects.filter(clinician=doctor).select_related("template"),
        "absence_form": AbsenceForm(),
        "absences": Absence.objects.filter(clinician=doctor),
        "feed_url": request.session.pop("calendar_feed_url", ""),
        "is_own": staff.pk == doctor.pk,
        "check": _why_not(request, staff, doctor, types),
    }
    return render(request, "scheduling/settings.html", context)


def _why_not(request, staff, doctor, types):
    """The "why can't my patient book?" check, for one type and optionally one patient."""
    kind_id = request.GET.get("check_type", "")
    kind = types.filter(pk=kind_id).first() if kind_id.isdigit() else None
    query = request.GET.get("check_q", "").strip()[:100]
    found, patient = [], None
    if staff.works_in_registry:
        visible = patients_visible_to(staff).filter(archived_at__isnull=True)
        pid = request.GET.get("check_patient", "")
        if pid.isdigit():
            patient = visible.filter(pk=int(pid)).first()
        elif query:
            found = list(search_patients(visible, query).order_by("last_name")[:10])
    obstacles = None
    if kind is not None:
        obstacles = services.online_obstacles(patient=patient, clinician=doctor, kind=kind)
    return {
        "kind": kind,
        "query": query,
        "found": found,
        "patient": patient,
        "obstacles": obstacles,
        "can_pick_patient": staff.works_in_registry,
    }


def _run(request, doctor, action, success: str):
    try:
        action()
    except DomainError as refusal:
        messages.error(request, refusal.message)
    else:
        messages.success(request, success)
    return redirect(_settings_url(doctor))


def _form_error(request, doctor, form):
    errors = [
        f"{form.fields[f].label if f in form.fields else ''}: {' '.join(e)}".lstrip(": ")
        for f, e in form.errors.items()
    ]
    messages.error(request, " ".join(errors))
    return redirect(_settings_url(doctor))


@login_required
@require_POST
def calendar_online(request):
    staff, _doctors, doctor = _doctor(request)
    online = request.POST.get("online") == "1"
    return _run(
        request,
        doctor,
        lambda: services.calendar_set_online(by=staff, clinician=doctor, online=online),
        _("The calendar is open for online booking.") if online else _("Online booking is closed."),
    )


@login_required
@require_POST
def calendar_feed_change(request):
    staff, _doctors, doctor = _doctor(request)
    if request.POST.get("revoke"):
        return _run(
            request,
            doctor,
            lambda: services.calendar_feed_revoke(by=staff, clinician=doctor),
            _("The calendar feed address no longer works."),
        )
    try:
        token = services.calendar_feed_create(by=staff, clinician=doctor)
    except DomainError as refusal:
        messages.error(request, refusal.message)
    else:
        request.session["calendar_feed_url"] = request.build_absolute_uri(
            reverse("calendar_feed", args=[token])
        )
    return redirect(_settings_url(doctor))


@login_required
@require_POST
def template_create(request):
    staff, _doctors, doctor = _doctor(request)
    form = TemplateForm(request.POST)
    if not form.is_valid():
        return _form_error(request, doctor, form)
    return _run(
        request,
        doctor,
        lambda: services.week_template_create(
            by=staff, clinician=doctor, name=form.cleaned_data["name"]
        ),
        _("The week template is created."),
    )


@login_required
@require_POST
def block_add(request, template_id):
    staff, _doctors, doctor = _doctor(request)
    template = get_object_or_404(WeekTemplate, pk=template_id, clinician=doctor)
    form = BlockForm(request.POST, types=_types_offered(staff, doctor))
    if not form.is_valid():
        return _form_error(request, doctor, form)
    d = form.cleaned_data
    return _run(
        request,
        doctor,
        lambda: services.template_block_add(
            by=staff,
            template=template,
            weekday=d["weekday"],
            start_time=d["start_time"],
            end_time=d["end_time"],
            types=d["types"],
        ),
        _("The time block is added."),
    )


@login_required
@require_POST
def block_delete(request, block_id):
    staff, _doctors, doctor = _doctor(request)
    block = get_object_or_404(TemplateBlock, pk=block_id, template__clinician=doctor)
    return _run(
        request,
        doctor,
        lambda: services.template_block_delete(by=staff, block=block),
        _("The time block is removed."),
    )


@login_required
@require_POST
def plan_create(request):
    staff, _doctors, doctor = _doctor(request)
    form = WorkPlanForm(request.POST, templates=WeekTemplate.objects.filter(clinician=doctor))
    if not form.is_valid():
        return _form_error(request, doctor, form)
    d = form.cleaned_data
    return _run(
        request,
        doctor,
        lambda: services.work_plan_create(
            by=staff,
            clinician=doctor,
            template=d["template"],
            start_date=d["start_date"],
            end_date=d["end_date"],
        ),
        _("The work plan is added."),
    )


@login_required
@require_POST
def plan_delete(request, plan_id):
    staff, _doctors, doctor = _doctor(request)
    plan = get_object_or_404(WorkPlan, pk=plan_id, clinician=doctor)
    return _run(
        request,
        doctor,
        lambda: services.work_plan_delete(by=staff, plan=plan),
        _("The work plan is removed."),
    )


@login_required
@require_POST
def absence_create(request):
    staff, _doctors, doctor = _doctor(request)
    form = AbsenceForm(request.POST)
    if not form.is_valid():
        return _form_error(request, doctor, form)
    d = form.cleaned_data
    return _run(
        request,
        doctor,
        lambda: services.absence_create(
            by=staff,
            clinician=doctor,
            start_date=d["start_date"],
            end_date=d["end_date"],
            reason=d["reason"],
        ),
        _("The absence is added."),
    )


@login_required
@require_POST
def absence_delete(request, absence_id):
    staff, _doctors, doctor = _doctor(request)
    absence = get_object_or_404(Absence, pk=absence_id, clinician=doctor)
    return _run(
        request,
        doctor,
        lambda: services.absence_delete(by=staff, absence=absence),
        _("The absence is removed."),
    )


@login_required
def type_edit(request, pk=None):
    staff = request.staff
    doctors = configurable_doctors(staff)
    kind = appointment_type_for_config(staff, pk) if pk else None
    clinic_wide = staff.role == StaffMember.Role.CLINIC_ADMIN
    form = AppointmentTypeForm(
        request.POST or None,
        instance=kind,
        doctors=doctors,
        clinic_wide=clinic_wide,
        initial=None if kind else {"clinician": staff if staff.is_doctor else None},
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.appointment_type_save(by=staff, kind=kind, **form.cleaned_data)
        except DomainError as refusal:
            form.add_error(None, refusal.message)
        else:
            messages.success(request, _("The appointment type is saved."))
            return redirect("calendar_settings")
    return render(request, "scheduling/type_form.html", {"form": form, "kind": kind})
