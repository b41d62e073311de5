"""`pumpctl ui`: a local web app for the pump pumpctl talks to (docs/web.md). Flask, on
pumpctl.api alone; app.py builds it, security.py guards it, session.py holds the pump.

Research and education prototype: never for human use.
"""
