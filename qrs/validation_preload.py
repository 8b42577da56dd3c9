"""Imported once by the fork server of the validation children (``validator_process``):
load and exercise everything ``validate_submission`` uses, so each child forks warm."""

from .validation import warm_up

warm_up()
