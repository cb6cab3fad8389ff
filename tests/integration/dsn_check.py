#!/usr/bin/env python3
"""dsn_check.py — read riptide's delivery status notifications with Python's email package.

Why: a notice is only useful if software riptide did not write can read it. This script parses
the notices a sink saved with the standard library's email parser (RFC 5322 + MIME, with its own
handling of message/delivery-status) and checks what RFC 3464 / RFC 6522 require, so the
integration tests never look at riptide's output through riptide's own eyes.

  dsn_check.py find DIR [--orig ID] [--action A]
      print the paths of the notices in DIR (multipart/report; report-type=delivery-status),
      oldest first (by the number in the sink's file name N.eml), optionally only those about
      the original with queue id ID (X-Riptide-Queue-ID or the Message-ID's tail) and/or whose
      recipients all have Action A.
  dsn_check.py check FILE [options]     exit 0 when every check holds, else 1 with the reason
      --to ADDR           the To: header is <ADDR>
      --action A          every recipient's Action is A (failed, delayed, relayed, ...)
      --rcpt ADDR[=ST]    (repeatable) the set of Final-Recipients is exactly these addresses;
                          with =ST that recipient's Status is ST
      --diag REGEX        every recipient's Diagnostic-Code matches REGEX (search)
      --original full|headers|none   third part: message/rfc822 | text/rfc822-headers | absent
      --orig-subject S    the attached original (or its header block) has Subject S
      --text REGEX        (repeatable) the human-readable part (decoded) matches REGEX
      --subject REGEX     the notice's Subject matches REGEX
      --envid E           per-message Original-Envelope-Id is E (xtext-decoded)
      --orcpt ADDR=VAL    that recipient's Original-Recipient is VAL (e.g. rfc822;a@b, decoded)
"""
import argparse
import email
import email.policy
import email.utils
import os
import re
import sys

STATUS_RE = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")
ACTION_CLASS = {"failed": "5", "delayed": "4", "relayed": "2", "delivered": "2", "expanded": "2"}


def load(path):
    with open(path, "rb") as f:
        return email.message_from_binary_file(f, policy=email.policy.compat32)


def is_report(msg):
    return (msg.get_content_type() == "multipart/report" and
            (msg.get_param("report-type") or "").lower() == "delivery-status")


def report_parts(msg):
    """(text part, per-message fields, [per-recipient fields], third part or None)."""
    parts = msg.get_payload()
    if not isinstance(parts, list) or len(parts) not in (2, 3):
        raise ValueError(f"multipart/report with {len(parts) if isinstance(parts, list) else 0}"
                         " parts, want 2 or 3")
    text, status = parts[0], parts[1]
    if text.get_content_type() != "text/plain":
        raise ValueError(f"first part is {text.get_content_type()}, want text/plain")
    if status.get_content_type() != "message/delivery-status":
        raise ValueError(f"second part is {status.get_content_type()}")
    blocks = status.get_payload()
    if not isinstance(blocks, list) or len(blocks) < 2:
        raise ValueError("message/delivery-status without per-recipient fields")
    return text, blocks[0], blocks[1:], parts[2] if len(parts) == 3 else None


def addr_of(field):
    """'rfc822; a@b' -> 'a@b' (the address type must be rfc822 or utf-8)."""
    typ, _, addr = (field or "").partition(";")
    if typ.strip().lower() not in ("rfc822", "utf-8") or not addr.strip():
        raise ValueError(f"bad recipient field {field!r}")
    return addr.strip()


def orig_id(msg, permsg):
    qid = (permsg.get("X-Riptide-Queue-ID") or "").strip()
    if not qid:
        m = re.search(r"\.([0-9a-f]{32})@", msg.get("Message-ID") or "")
        qid = m.group(1) if m else ""
    return qid


def cmd_find(a):
    names = [n for n in os.listdir(a.dir) if n.endswith(".eml")]
    names.sort(key=lambda n: (int(n[:-4]) if n[:-4].isdigit() else 1 << 62, n))
    for n in names:
        p = os.path.join(a.dir, n)
        msg = load(p)
        if not is_report(msg):
            continue
        try:
            _, permsg, rcpts, _ = report_parts(msg)
        except ValueError:
            print(p)  # a broken notice: let `check` say why
            continue
        if a.orig and orig_id(msg, permsg) != a.orig:
            continue
        if a.action and any((r.get("Action") or "").strip().lower() != a.action
                            for r in rcpts):
            continue
        print(p)
    return 0


def check_top(msg, a):
    if not is_report(msg):
        raise ValueError(f"not multipart/report; report-type=delivery-status: "
                         f"{msg.get('Content-Type')}")
    frm = email.utils.parseaddr(msg.get("From") or "")[1]
    if not frm.upper().startswith("MAILER-DAEMON@"):
        raise ValueError(f"From: {msg.get('From')}")
    if (msg.get("Auto-Submitted") or "").strip().lower() != "auto-replied":
        raise ValueError("no Auto-Submitted: auto-replied")
    for h in ("Date", "Message-ID", "Subject"):
        if not msg.get(h):
            raise ValueError(f"no {h}:")
    if email.utils.parsedate_to_datetime(msg["Date"]) is None:
        raise ValueError(f"bad Date: {msg['Date']}")
    if a.to and email.utils.parseaddr(msg.get("To") or "")[1] != a.to:
        raise ValueError(f"To: {msg.get('To')}, want <{a.to}>")
    if a.subject and not re.search(a.subject, str(msg["Subject"])):
        raise ValueError(f"Subject {msg['Subject']!r} !~ {a.subject}")


def check_rcpt(r, a):
    addr = addr_of(r.get("Final-Recipient"))
    action = (r.get("Action") or "").strip().lower()
    status = (r.get("Status") or "").strip()
    if action not in ACTION_CLASS:
        raise ValueError(f"{addr}: Action {action!r}")
    if not STATUS_RE.match(status) or status[0] != ACTION_CLASS[action]:
        raise ValueError(f"{addr}: Status {status!r} with Action {action}")
    if a.action and action != a.action:
        raise ValueError(f"{addr}: Action {action}, want {a.action}")
    diag = (r.get("Diagnostic-Code") or "").strip()
    if diag and ";" not in diag:
        raise ValueError(f"{addr}: Diagnostic-Code without a type: {diag!r}")
    if a.diag and not re.search(a.diag, diag):
        raise ValueError(f"{addr}: Diagnostic-Code {diag!r} !~ {a.diag}")
    for d in ("Last-Attempt-Date", "Will-Retry-Until"):
        if r.get(d) and email.utils.parsedate_to_datetime(r[d]) is None:
            raise ValueError(f"{addr}: bad {d}")
    return addr, status


def check_original(third, a):
    want = {"full": "message/rfc822", "headers": "text/rfc822-headers", "none": None}[a.original]
    got = third.get_content_type() if third is not None else None
    if got != want:
        raise ValueError(f"original attached as {got}, want {want}")
    if not a.orig_subject or third is None:
        return
    if got == "message/rfc822":
        inner = third.get_payload()[0]
    else:
        inner = email.message_from_bytes(third.get_payload(decode=True),
                                         policy=email.policy.compat32)
    if (inner.get("Subject") or "").strip() != a.orig_subject:
        raise ValueError(f"original's Subject {inner.get('Subject')!r}, want {a.orig_subject!r}")
    if got == "text/rfc822-headers" and inner.get_payload().strip():
        raise ValueError("text/rfc822-headers part carries a body")


def cmd_check(a):
    msg = load(a.file)
    check_top(msg, a)
    text, permsg, rcpts, third = report_parts(msg)
    if not (permsg.get("Reporting-MTA") or "").lower().startswith("dns;"):
        raise ValueError(f"Reporting-MTA {permsg.get('Reporting-MTA')!r}")
    if a.envid is not None and (permsg.get("Original-Envelope-Id") or "").strip() != a.envid:
        raise ValueError(f"Original-Envelope-Id {permsg.get('Original-Envelope-Id')!r}")
    got = dict(check_rcpt(r, a) for r in rcpts)
    if len(got) != len(rcpts):
        raise ValueError("a recipient is reported twice")
    if a.rcpt:
        want = dict((x.split("=", 1) + [None])[:2] for x in a.rcpt)
        if set(want) != set(got):
            raise ValueError(f"recipients {sorted(got)}, want {sorted(want)}")
        for k, v in want.items():
            if v and got[k] != v:
                raise ValueError(f"{k}: Status {got[k]}, want {v}")
    for x in a.orcpt or []:
        k, v = x.split("=", 1)
        r = [r for r in rcpts if addr_of(r.get("Final-Recipient")) == k]
        if not r or (r[0].get("Original-Recipient") or "").replace(" ", "") != v:
            raise ValueError(f"{k}: Original-Recipient {r and r[0].get('Original-Recipient')!r}")
    if a.original:
        check_original(third, a)
    body = text.get_payload(decode=True).decode(text.get_content_charset() or "ascii")
    for t in a.text or []:
        if not re.search(t, body):
            raise ValueError(f"text part !~ {t!r}:\n{body}")
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("find")
    f.add_argument("dir")
    f.add_argument("--orig")
    f.add_argument("--action")
    c = sub.add_parser("check")
    c.add_argument("file")
    for o in ("--to", "--action", "--diag", "--orig-subject", "--subject", "--envid"):
        c.add_argument(o)
    c.add_argument("--original", choices=("full", "headers", "none"))
    for o in ("--rcpt", "--text", "--orcpt"):
        c.add_argument(o, action="append")
    a = p.parse_args()
    try:
        return cmd_find(a) if a.cmd == "find" else cmd_check(a)
    except (ValueError, KeyError, IndexError, TypeError, UnicodeDecodeError) as e:
        print(f"FAIL: {a.cmd} {getattr(a, 'file', a.dir if a.cmd == 'find' else '')}: {e}",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
