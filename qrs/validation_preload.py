"""Imported once by the fork server of the validation children (``validator_process``):
load and exercise everything ``check_submission`` uses, so each child forks warm."""

from .submission_check import warm_up

warm_up()
