from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from consulta.lib.errors import DomainError
from consulta.patients.access import import_for_staff, registry_staff
from consulta.patients.imports import services
from consulta.patients.imports.forms import ImportForm
from consulta.patients.imports.reader import MAX_BYTES


@login_required
def import_start(request):
    staff = registry_staff(request.staff)
    form = ImportForm(request.POST or None, request.FILES or None, staff=staff)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > MAX_BYTES:
            form.add_error(
                "file",
                _("The file is larger than %(mb)d MB. Split it into smaller files.")
                % {"mb": MAX_BYTES // (1024 * 1024)},
            )
        else:
            try:
                job = services.patient_import_start(
                    by=staff,
                    doctor=form.cleaned_data["doctor"],
                    filename=upload.name,
                    content=upload.read(),
                    format=form.cleaned_data["format"],
                    archive_missing=form.cleaned_data["archive_missing"],
                )
            except DomainError as refusal:
                form.add_error("file" if refusal.code != "forbidden" else None, refusal.message)
            else:
                return redirect("patient_import", job.pk)
    return render(
        request, "patients/import_start.html", {"form": form}, status=400 if form.errors else 200
    )


@login_required
def import_detail(request, pk):
    job = import_for_staff(registry_staff(request.staff), pk)
    # The preview lists a few rows of each kind: say how many it leaves out.
    preview, summary = job.preview or {}, job.summary or {}
    more = {
        kind: max(summary.get(kind, 0) - len(preview.get(kind, [])), 0)
        for kind in ("new", "updated", "archived", "invalid")
    }
    return render(request, "patients/import_detail.html", {"job": job, "more": more})


@login_required
def import_status(request, pk):
    job = import_for_staff(registry_staff(request.staff), pk)
    return JsonResponse({"status": job.status, "processed": job.processed, "total": job.total})


@login_required
def import_errors(request, pk):
    job = import_for_staff(registry_staff(request.staff), pk)
    response = HttpResponse("\ufeff" + job.errors_csv, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-errors-{job.pk}.csv"'
    return response


@login_required
@require_POST
def import_confirm(request, pk):
    staff = registry_staff(request.staff)
    job = import_for_staff(staff, pk)
    try:
        services.patient_import_confirm(by=staff, job=job)
    except DomainError as refusal:
        messages.error(request, refusal.message)
    return redirect("patient_import", pk)


@login_required
@require_POST
def import_cancel(request, pk):
    staff = registry_staff(request.staff)
    job = import_for_staff(staff, pk)
    try:
        services.patient_import_cancel(by=staff, job=job)
    except DomainError as refusal:
        messages.error(request, refusal.message)
        return redirect("patient_import", pk)
    messages.info(request, _("The import has been cancelled; nothing was changed."))
    return redirect("patient_list")
