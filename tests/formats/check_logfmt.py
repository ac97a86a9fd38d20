"""Read curtain's --log-format text lines with a logfmt parser that is not
curtain's (PyPI `logfmt`), and check each is one whole event.

usage: check_logfmt.py FILE EVENTS...
FILE holds curtain's stdout; EVENTS are the event names expected, in order.
Exit 0 when every line parses to the keys time, level, event, msg, target
(no line split in two, no key forged by a value), 1 otherwise.
"""
import sys

from logfmt.parser import parse_line

path, want = sys.argv[1], sys.argv[2:]
lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
events = []
for line in lines:
    d = parse_line(line)
    missing = [k for k in ("time", "level", "event", "msg", "target") if k not in d]
    if missing:
        sys.exit(f"not one whole event (no {missing}): {line!r}")
    forged = [k for k in d if k.upper().startswith("FAKE")]
    if forged:
        sys.exit(f"a value made keys {forged}: {line!r}")
    if not d["target"].startswith("curtain"):
        sys.exit(f"target {d['target']!r}: {line!r}")
    events.append(d["event"])
if events != want:
    sys.exit(f"events {events}, expected {want}")
print(f"logfmt: {len(lines)} lines parsed")
