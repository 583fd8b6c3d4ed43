"""The notifications domain: what the buyer is told and when, as pure rules (no I/O).

- `emails`: which emails an event asks for, and what each shows (the drafts).
- `notification`: the typed `Notification` and its life: pending, then sent or failed.
- `download_link`: the typed `DownloadLink` and the rules for following one.
"""
