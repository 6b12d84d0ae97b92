from django_tasks import task


@task()
def analyse_import(job_id: str) -> None:
    from consulta.patients.imports.services import patient_import_analyse

    patient_import_analyse(job_id=job_id)


@task()
def apply_import(job_id: str) -> None:
    from consulta.patients.imports.services import patient_import_apply

    patient_import_apply(job_id=job_id)
