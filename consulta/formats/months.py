"""The month names inside a date ("22 novembre 2026"), in Consulta's catalogues, which come
before Django's: Django's Italian catalogue capitalises them, as a heading would, and Italian
writes them in lower case within a date. Listed here so that `make messages` keeps them."""

from django.utils.translation import gettext_noop

MONTHS = (
    gettext_noop("January"),
    gettext_noop("February"),
    gettext_noop("March"),
    gettext_noop("April"),
    gettext_noop("May"),
    gettext_noop("June"),
    gettext_noop("July"),
    gettext_noop("August"),
    gettext_noop("September"),
    gettext_noop("October"),
    gettext_noop("November"),
    gettext_noop("December"),
)
