"""Recounting history under new download rules: plan, judge, shadow, report, cutover.

See :mod:`stream.recount.job` for the flow and docs/RECOUNT.md for the operator's walk.
"""
