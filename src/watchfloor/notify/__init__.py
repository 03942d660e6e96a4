"""Notifications: signed webhooks, e-mail over SMTP and in-app inboxes, per watch and severity.

- :mod:`.plan` decides who hears about what (rules) and writes it as a
  :class:`~watchfloor.store.notify_repo.Fanout`, in the transaction of the change itself;
- :mod:`.dispatch` delivers the outbox at least once, with retries, in the background;
- :mod:`.webhook` signs (HMAC-SHA256) and :mod:`.email` sends; :mod:`.config` reads the settings.
"""
