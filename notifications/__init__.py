"""The emails the checkout's transitions queue: rendered, sent over SMTP, each once.

The dispatcher runs beside the Temporal worker, never inside an activity: a mail server that
is down or refuses delays only the mail, never the sale or the reopening.
"""
