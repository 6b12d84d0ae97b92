import phonenumbers
from django import template

register = template.Library()


@register.filter
def phone(value: str) -> str:
    """+393331234567 → +39 333 123 4567: stored in E.164, shown the way people read it."""
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
