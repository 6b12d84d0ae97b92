"""Free slots: week templates (local wall-clock time) applied by work plans to dates, minus
absences and the time bookings hold.

Slots are laid out on each date in the clinic's time zone, so a 09:00 slot stays at 09:00
across a daylight-saving change; a wall-clock time that does not exist that day (the hour
skipped in spring) gives no slot. Times leave this module as aware UTC datetimes."""

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Prefetch, Q

from consulta.scheduling.models import (
    Absence,
    AppointmentType,
    BookingHold,
    DayType,
    TemplateBlock,
    WorkPlan,
)


@dataclass(frozen=True, slots=True)
class Slot:
    clinician_id: int
    appointment_type_id: int
    starts_at: datetime  # UTC
    ends_at: datetime  # UTC

    @property
    def key(self) -> str:
        """Identifies the slot in a form: "<type id>:<start as a UTC timestamp>"."""
        return f"{self.appointment_type_id}:{int(self.starts_at.timestamp())}"


def dates(start: date, days: int) -> list[date]:
    return [start + timedelta(days=n) for n in range(days)]


def local_to_utc(day: date, wall: datetime, tz: ZoneInfo) -> datetime | None:
    """The UTC instant of a wall-clock time on `day`, or None if that time does not exist
    there (the hour skipped when clocks go forward)."""
    aware = wall.replace(tzinfo=tz)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != wall:
        return None
    return aware.astimezone(UTC)


def template_slots(
    clinician_ids: list[int], start: date, days: int, tz: ZoneInfo, type_ids=None
) -> list[Slot]:
    """Every slot the work plans lay out for these clinicians from `start`, for `days` days,
    booked or not. `type_ids` keeps only those appointment types. On a day given one type
    (DayType), every block offers that type only."""
    end = start + timedelta(days=days - 1)
    types = AppointmentType.objects.filter(is_active=True)
    if type_ids is not None:
        types = types.filter(pk__in=type_ids)
    blocks = TemplateBlock.objects.prefetch_related(
        Prefetch("appointment_types", queryset=types.only("pk", "duration_minutes"))
    )
    plans = (
        WorkPlan.objects.filter(
            clinician_id__in=clinician_ids, start_date__lte=end, end_date__gte=start
        )
        .select_related("template")
        .prefetch_related(Prefetch("template__blocks", queryset=blocks))
    )
    day_types = {
        (d.clinician_id, d.day): d.appointment_type
        for d in DayType.objects.filter(
            clinician_id__in=clinician_ids, day__gte=start, day__lte=end
        ).select_related("appointment_type")
    }
    absent: dict[int, list[Absence]] = defaultdict(list)
    for absence in Absence.objects.filter(
        clinician_id__in=clinician_ids, start_date__lte=end, end_date__gte=start
    ):
        absent[absence.clinician_id].append(absence)
    slots = []
    for plan in plans:
        by_weekday = defaultdict(list)
        for block in plan.template.blocks.all():
            by_weekday[block.weekday].append(block)
        for day in dates(
            max(start, plan.start_date),
            (min(end, plan.end_date) - max(start, plan.start_date)).days + 1,
        ):
            if any(a.start_date <= day <= a.end_date for a in absent[plan.clinician_id]):
                continue
            for block in by_weekday[day.weekday()]:
                opens = datetime.combine(day, block.start_time)
                closes = datetime.combine(day, block.end_time)
                for kind in _kinds(block, day_types.get((plan.clinician_id, day)), type_ids):
                    length = timedelta(minutes=kind.duration_minutes)
                    wall = opens
                    while wall + length <= closes:
                        starts = local_to_utc(day, wall, tz)
                        if starts is not None:
                            slots.append(Slot(plan.clinician_id, kind.pk, starts, starts + length))
                        wall += length
    slots.sort(key=lambda s: (s.starts_at, s.clinician_id, s.appointment_type_id))
    return slots


def _kinds(block, day_type, type_ids) -> list:
    """The block's types, or the one type chosen for that whole day."""
    if day_type is None:
        return list(block.appointment_types.all())
    if not day_type.is_active or (type_ids is not None and day_type.pk not in type_ids):
        return []
    return [day_type]


def busy_times(clinician_ids: list[int], since: datetime, until: datetime):
    """{clinician id: sorted [(start, end)]} of the time active bookings hold."""
    busy: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    rows = (
        BookingHold.objects.filter(
            Q(clinician_id__in=clinician_ids),
            active=True,
            starts_at__lt=until,
            ends_at__gt=since,
        )
        .order_by("starts_at")
        .values_list("clinician_id", "starts_at", "ends_at")
    )
    for clinician_id, starts, ends in rows:
        busy[clinician_id].append((starts, ends))
    return busy


def overlaps(intervals: list[tuple[datetime, datetime]], starts: datetime, ends: datetime) -> bool:
    """Whether [starts, ends) overlaps one of these sorted, non-overlapping intervals."""
    index = bisect_left(intervals, (starts,))
    if index < len(intervals) and intervals[index][0] < ends:
        return True
    return index > 0 and intervals[index - 1][1] > starts


def free_slots(
    clinician_ids: list[int],
    start: date,
    days: int,
    tz: ZoneInfo,
    *,
    type_ids=None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> list[Slot]:
    """The template slots that no active booking overlaps, from `not_before` (default: now)
    up to `not_after`."""
    slots = template_slots(clinician_ids, start, days, tz, type_ids)
    if not slots:
        return []
    floor = not_before or datetime.now(UTC)
    busy = busy_times(clinician_ids, slots[0].starts_at, max(s.ends_at for s in slots))
    return [
        s
        for s in slots
        if s.starts_at >= floor
        and (not_after is None or s.starts_at <= not_after)
        and not overlaps(busy[s.clinician_id], s.starts_at, s.ends_at)
    ]
