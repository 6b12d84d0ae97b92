# Italian dates as Italians write them: "2 novembre 2026" (Django's are "02 Novembre 2026"; the
# month names' lower case comes from Consulta's catalogue, see consulta/formats/months.py).
# Everything not set here is Django's.
DATE_FORMAT = "j F Y"
DATETIME_FORMAT = "j F Y, H:i"
