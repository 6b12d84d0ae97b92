"""Free slots: week templates (local wall-clock time) applied by work plans to dates, minus
absences and the time bookings hold.

Slots are laid out on each date in the clinic's time zone, so a 09:00 slot stays at 09:00
across a daylight-saving change; a wall-clock time that does not exist that day (the hour
skipped in spring) gives no slot. Times leave this module as aware UTC datetimes."""

from bisect import bisect_left
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import FloatField, Q
from django.db.models.functions import Cast, Extract

from consulta.scheduling.models import (
    Absence,
    BookingHold,
    DayType,
    TemplateBlock,
    WorkPlan,
)


class Slot(NamedTuple):
    """A time in one clinician's calendar for one appointment type. Tuples sort by start,
    then clinician, then type; and a group's week is thousands of them."""

    starts_at: datetime  # UTC
    clinician_id: int
    appointment_type_id: int
    ends_at: datetime  # UTC
    # The same two instants in seconds since the epoch, for comparing thousands of slots
    # with the time bookings hold (busy_times) and for the pages' links.
    start_epoch: float
    end_epoch: float


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
    (DayType), every block offers that type only. (Plain values, not model instances: a
    group's week is a few hundred blocks, read on every calendar request.)"""
    end = start + timedelta(days=days - 1)
    plans = list(
        WorkPlan.objects.filter(
            clinician_id__in=clinician_ids, start_date__lte=end, end_date__gte=start
        ).values_list("clinician_id", "template_id", "start_date", "end_date")
    )
    if not plans:
        return []
    # One row per block and appointment type (the many-to-many join).
    durations: dict[int, timedelta] = {}
    block_types: dict[int, list[int]] = defaultdict(list)
    blocks: dict[tuple[int, int], dict[int, tuple]] = defaultdict(dict)
    for (
        block_id,
        template_id,
        weekday,
        opens,
        closes,
        type_id,
        minutes,
        active,
    ) in TemplateBlock.objects.filter(template_id__in={p[1] for p in plans}).values_list(
        "pk",
        "template_id",
        "weekday",
        "start_time",
        "end_time",
        "appointment_types",
        "appointment_types__duration_minutes",
        "appointment_types__is_active",
    ):
        blocks[(template_id, weekday)][block_id] = (block_id, opens, closes)
        if active and (type_ids is None or type_id in type_ids):
            durations[type_id] = timedelta(minutes=minutes)
            block_types[block_id].append(type_id)
    day_types = {}
    for clinician_id, day, type_id, minutes, active in DayType.objects.filter(
        clinician_id__in=clinician_ids, day__gte=start, day__lte=end
    ).values_list(
        "clinician_id",
        "day",
        "appointment_type_id",
        "appointment_type__duration_minutes",
        "appointment_type__is_active",
    ):
        day_types[(clinician_id, day)] = type_id
        if active and (type_ids is None or type_id in type_ids):
            durations[type_id] = timedelta(minutes=minutes)
    absent: dict[int, list[tuple[date, date]]] = defaultdict(list)
    for clinician_id, first_day, last_day in Absence.objects.filter(
        clinician_id__in=clinician_ids, start_date__lte=end, end_date__gte=start
    ).values_list("clinician_id", "start_date", "end_date"):
        absent[clinician_id].append((first_day, last_day))
    slots = []
    for clinician_id, template_id, plan_start, plan_end in plans:
        first_day, last_day = max(start, plan_start), min(end, plan_end)
        for day in dates(first_day, (last_day - first_day).days + 1):
            if any(a <= day <= b for a, b in absent[clinician_id]):
                continue
            day_type = day_types.get((clinician_id, day))
            for block_id, block_opens, block_closes in blocks[
                (template_id, day.weekday())
            ].values():
                opens = datetime.combine(day, block_opens)
                closes = datetime.combine(day, block_closes)
                first, last = local_to_utc(day, opens, tz), local_to_utc(day, closes, tz)
                steady = first is not None and last is not None and last - first == closes - opens
                kinds = block_types[block_id] if day_type is None else [day_type]
                for type_id in kinds:
                    length = durations.get(type_id)
                    if length is None:  # inactive, or not asked for
                        continue
                    count = (closes - opens) // length
                    seconds = length.total_seconds()
                    if steady:  # no clock change inside the block: one offset for all
                        epoch = first.timestamp()
                        for n in range(count):
                            starts = first + n * length
                            at = epoch + n * seconds
                            slots.append(
                                Slot(
                                    starts, clinician_id, type_id, starts + length, at, at + seconds
                                )
                            )
                        continue
                    for n in range(count):
                        starts = local_to_utc(day, opens + n * length, tz)
                        if starts is not None:
                            at = starts.timestamp()
                            slots.append(
                                Slot(
                                    starts, clinician_id, type_id, starts + length, at, at + seconds
                                )
                            )
    slots.sort()
    return slots


def busy_times(clinician_ids: list[int], since: datetime, until: datetime):
    """{clinician id: sorted [(start, end)]} of the time active bookings hold, in seconds
    since the epoch (PostgreSQL computes them: a group's week holds a thousand instants, and
    numbers cross from the database far faster than aware datetimes do)."""
    busy: dict[int, list[tuple[float, float]]] = defaultdict(list)
    rows = BookingHold.objects.filter(
        Q(clinician_id__in=clinician_ids),
        active=True,
        starts_at__lt=until,
        ends_at__gt=since,
    ).order_by("starts_at")
    if connection.vendor == "postgresql":
        epoch = {
            name: Cast(Extract(name, "epoch", tzinfo=UTC), FloatField())
            for name in ("starts_at", "ends_at")
        }
        for clinician_id, starts, ends in rows.values_list(
            "clinician_id", epoch["starts_at"], epoch["ends_at"]
        ):
            busy[clinician_id].append((starts, ends))
    else:
        for clinician_id, starts, ends in rows.values_list("clinician_id", "starts_at", "ends_at"):
            busy[clinician_id].append((starts.timestamp(), ends.timestamp()))
    return busy


def overlaps(intervals: list[tuple[float, float]], starts: float, ends: float) -> bool:
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
        and not overlaps(busy[s.clinician_id], s.start_epoch, s.end_epoch)
    ]
