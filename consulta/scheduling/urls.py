from django.urls import path

from consulta.scheduling import patient_views, settings_views, views

urlpatterns = [
    path("calendar/", views.calendar_view, name="calendar"),
    path("calendar/types.css", views.appointment_type_css, name="appointment_type_css"),
    path("calendar/free/", views.free_times, name="free_times"),
    path("calendar/book/", views.booking_new, name="booking_new"),
    path("calendar/day-type/", views.day_type, name="day_type"),
    path("calendar/bookings/<uuid:pk>/", views.booking_detail, name="booking_detail"),
    path("calendar/bookings/<uuid:pk>/change/", views.booking_action, name="booking_action"),
    path("calendar/feed/<str:token>.ics", views.calendar_feed, name="calendar_feed"),
    path("calendar/settings/", settings_views.calendar_settings, name="calendar_settings"),
    path("calendar/settings/online/", settings_views.calendar_online, name="calendar_online"),
    path(
        "calendar/settings/feed/", settings_views.calendar_feed_change, name="calendar_feed_change"
    ),
    path("calendar/settings/templates/", settings_views.template_create, name="template_create"),
    path(
        "calendar/settings/templates/<int:template_id>/blocks/",
        settings_views.block_add,
        name="block_add",
    ),
    path(
        "calendar/settings/blocks/<int:block_id>/delete/",
        settings_views.block_delete,
        name="block_delete",
    ),
    path("calendar/settings/plans/", settings_views.plan_create, name="plan_create"),
    path(
        "calendar/settings/plans/<int:plan_id>/delete/",
        settings_views.plan_delete,
        name="plan_delete",
    ),
    path("calendar/settings/absences/", settings_views.absence_create, name="absence_create"),
    path(
        "calendar/settings/absences/<int:absence_id>/delete/",
        settings_views.absence_delete,
        name="absence_delete",
    ),
    path("calendar/types/new/", settings_views.type_edit, name="type_new"),
    path("calendar/types/<int:pk>/", settings_views.type_edit, name="type_edit"),
    path("booking/", patient_views.book_online, name="book_online"),
    path(
        "booking/<int:doctor_id>/<int:type_id>/",
        patient_views.book_online_slots,
        name="book_online_slots",
    ),
    path("booking/mine/", patient_views.my_bookings, name="my_bookings"),
    path(
        "booking/mine/<uuid:pk>/cancel/", patient_views.my_booking_cancel, name="my_booking_cancel"
    ),
]
