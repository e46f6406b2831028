"""The `maildesk` command: the only place errors become exit codes and messages.

Exit codes: 0 success, 1 a user error (one line on stderr, no traceback), 2 usage error.
Global options come before the command: --config, --db (or MAILDESK_DB), --now (or
MAILDESK_NOW), so a user can replay a day and tests need not wait.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maildesk import __version__
from maildesk.errors import MaildeskError, UserError

if TYPE_CHECKING:
    from maildesk.config import Config


def _now(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"--now {text!r} is not an ISO-8601 time like 2026-11-23T09:30:00+01:00") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="maildesk", description="An email-native help desk.")
    parser.add_argument("--version", action="version", version=f"maildesk {__version__}")
    parser.add_argument("--config", type=Path, help="maildesk.toml (default: ./maildesk.toml if present)")
    parser.add_argument("--db", help="database URL (default: MAILDESK_DB, the config, sqlite:///maildesk.db)")
    parser.add_argument("--now", help="the clock for this command, ISO-8601 (default: MAILDESK_NOW or now)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    init = commands.add_parser("init", help="write a commented maildesk.toml")
    init.add_argument("path", nargs="?", type=Path, default=Path("maildesk.toml"))
    init.add_argument("--force", action="store_true", help="overwrite an existing file")

    ingest = commands.add_parser("ingest", help="ingest .eml files, folders, mbox files or - for stdin")
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    ingest.add_argument("--json", action="store_true", help="print a JSON summary")

    serve = commands.add_parser("serve", help="SMTP listener, IMAP readers, workers and clock, until stopped")
    serve.add_argument(
        "--role",
        choices=("all", "intake", "worker", "clock"),
        default="all",
        help="run one part only, for several processes sharing PostgreSQL (default: all)",
    )

    tickets = commands.add_parser("tickets", help="list and show tickets")
    tickets_commands = tickets.add_subparsers(dest="tickets_command", metavar="ACTION", required=True)
    listing = tickets_commands.add_parser("list", help="the tickets")
    listing.add_argument("--status")
    listing.add_argument("--team", help="only this team's tickets")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--with-messages", action="store_true", help="add messages and events")
    show = tickets_commands.add_parser("show", help="one ticket with its messages and events")
    show.add_argument("ref", metavar="REF")
    show.add_argument("--json", action="store_true")
    label = tickets_commands.add_parser("label", help="confirm or correct a ticket's issue type or team")
    label.add_argument("ref", metavar="REF")
    label.add_argument(
        "--type", dest="issue_type", help="Service Request, Information Request, Problem, Incident"
    )
    label.add_argument("--team")
    label.add_argument("--by", default="cli", help="who says so (kept with the label)")

    quarantine = commands.add_parser("quarantine", help="spam and unprocessable mail")
    q_commands = quarantine.add_subparsers(dest="quarantine_command", metavar="ACTION", required=True)
    q_list = q_commands.add_parser("list", help="what is in quarantine, and why")
    q_list.add_argument("--json", action="store_true")
    release = q_commands.add_parser("release", help="put a message back through the pipeline")
    release.add_argument("ids", nargs="+", metavar="ID", type=int)

    outbox = commands.add_parser("outbox", help="outgoing mail waiting to be sent")
    o_commands = outbox.add_subparsers(dest="outbox_command", metavar="ACTION", required=True)
    o_commands.add_parser("flush", help="send what is due now")

    classify = commands.add_parser("classify", help="screen and classify messages without storing them")
    classify.add_argument("files", nargs="+", type=Path, metavar="FILE.eml")
    classify.add_argument("--json", action="store_true", help="one JSON object per line per file")

    train = commands.add_parser("train", help="train a model from labelled mail")
    train.add_argument("kind", choices=["spam", "issue-type", "team", "request-type"])
    train.add_argument("--data", type=Path, help="labelled mail: a folder, a corpus or a CSV")
    train.add_argument("--out", type=Path, default=Path("models"), help="where models go (default models/)")

    evaluate = commands.add_parser("evaluate", help="score a model on labelled data it never saw")
    evaluate.add_argument("kind", choices=["issue-type", "team", "request-type", "spam"])
    evaluate.add_argument("--data", type=Path, required=True, help="a folder of .eml with labels, or a CSV")
    evaluate.add_argument(
        "--model", type=Path, default=Path("models"), help="the model folder (default models/)"
    )
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument(
        "--png", type=Path, help="where the confusion matrix goes (default KIND-confusion.png)"
    )

    db = commands.add_parser("db", help="the database: schema migrations")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_commands.add_parser("upgrade", help="apply the migrations this database lacks, and say which")

    explain = commands.add_parser("explain", help="every decision about a message, and why, changing nothing")
    explain.add_argument("files", nargs="+", type=Path, metavar="FILE.eml")
    explain.add_argument("--json", action="store_true", help="one JSON object per file")

    sla = commands.add_parser("sla", help="the SLA clock")
    sla_commands = sla.add_subparsers(dest="sla_command", metavar="ACTION", required=True)
    sla_run = sla_commands.add_parser(
        "run", help="one pass: reminders, escalations, dispatches, closings, digest"
    )
    sla_run.add_argument("--json", action="store_true", help="print what the pass did as JSON")

    report = commands.add_parser("report", help="reports for people and scripts")
    r_commands = report.add_subparsers(dest="report_command", metavar="REPORT", required=True)
    r_sla = r_commands.add_parser("sla", help="what is due, breached, unanswered and unattended")
    r_sla.add_argument("--json", action="store_true", help="print the report as JSON")
    r_sla.add_argument("--html", type=Path, metavar="FILE", help="also write a self-contained HTML page")
    r_sla.add_argument("--within", default="24h", help="how far ahead 'due' looks (default: 24h)")

    templates = commands.add_parser("templates", help="the mail templates, shipped and overridden")
    t_commands = templates.add_subparsers(dest="templates_command", metavar="ACTION", required=True)
    t_check = t_commands.add_parser(
        "check", help="render every template with sample data and check the correspondence rules"
    )
    t_check.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from maildesk.log import setup_logging

    setup_logging(args.verbose)
    try:
        return _dispatch(args)
    except MaildeskError as exc:
        print(f"maildesk: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("maildesk: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "init":
        return _init(args.path, args.force)
    from maildesk.config import load_config
    from maildesk.desk import open_desk

    config = load_config(args.config)
    if args.command == "templates":
        return _templates(config, args)
    now_text = args.now or os.environ.get("MAILDESK_NOW")
    now = _now(now_text)
    url = args.db or os.environ.get("MAILDESK_DB") or config.database_url
    if args.command == "db":
        from maildesk.tickets.store.db import close_database, open_database
        from maildesk.tickets.store.migrations import MIGRATIONS, migrate

        database = open_database(url, upgrade=False)
        try:
            # each migration runs in its own transaction, so workers on the old schema carry on
            applied = migrate(database)
        finally:
            close_database(database)
        names = dict((version, name) for version, name, _ in MIGRATIONS)
        for version in applied:
            print(f"applied {version}: {names[version]}")
        print(f"schema at version {MIGRATIONS[-1][0]}" + ("" if applied else " (nothing to do)"))
        return 0
    if args.command == "serve":
        import logging

        from maildesk.serve import serve

        logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
        return serve(config, url, args.role, now if now_text else None)
    desk = open_desk(config, url, sync=args.command != "explain")
    try:
        if args.command == "ingest":
            return _ingest(desk, args, now)
        if args.command == "tickets":
            return _tickets(desk, args, now)
        if args.command == "quarantine":
            return _quarantine(desk, args, now)
        if args.command == "outbox":
            return _outbox(desk, now)
        if args.command == "classify":
            return _classify(desk, args, now)
        if args.command == "train":
            return _train(desk, args, now)
        if args.command == "evaluate":
            return _evaluate(args)
        if args.command == "sla":
            return _sla(desk, args, now)
        if args.command == "explain":
            return _explain(desk, args, now)
        if args.command == "report":
            return _report(desk, args, now)
        raise UserError(f"unknown command {args.command}")
    finally:
        desk.close()


def _init(path: Path, force: bool) -> int:
    if path.exists() and not force:
        raise UserError(f"{path} exists; use --force to overwrite it")
    text = resources.files("maildesk").joinpath("default_config.toml").read_text(encoding="utf-8")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}") from None
    print(f"wrote {path}")
    return 0


def _ingest(desk: Any, args: argparse.Namespace, now: datetime) -> int:
    from maildesk.intake.files import check_paths, read_sources

    check_paths(args.paths)
    bar = None
    if sys.stderr.isatty() and not args.json:
        from tqdm import tqdm

        bar = tqdm(unit="msg", desc="ingest", file=sys.stderr)
    try:
        summary = desk.ingest(read_sources(args.paths), now, progress=bar.update if bar else None)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(json.dumps(summary.as_dict()))
    else:
        s = summary
        print(
            f"{s.received} received: {s.new_tickets} new tickets, {s.replies} replies, "
            f"{s.duplicates} duplicates, {s.spam} spam, {s.auto_replies} auto-replies, "
            f"{s.bounces} bounces, {s.quarantined} quarantined in {s.seconds:.1f}s"
        )
    return 0


def _tickets(desk: Any, args: argparse.Namespace, now: datetime) -> int:
    from maildesk.tickets import views

    if args.tickets_command == "label":
        from maildesk.agents import set_issue_type, set_team
        from maildesk.agents.commands import Act
        from maildesk.clock import naive_utc
        from maildesk.tickets.store.models import Event

        if not args.issue_type and not args.team:
            raise UserError("give --type and/or --team")
        ticket = views.find_ticket(args.ref, desk.config)
        with desk.database.atomic():
            for given, command in ((args.issue_type, set_issue_type), (args.team, set_team)):
                if given:
                    outcome = command(Act(ticket, given, args.by, naive_utc(now), desk.config))
                    if not outcome.ok:
                        raise UserError(outcome.detail)
                    detail = outcome.detail
                    Event.create(
                        ticket=ticket, at=naive_utc(now), kind="labelled", detail=detail, actor=args.by
                    )
                    print(f"{args.ref}: {detail}")
        return 0

    if args.tickets_command == "show":
        ticket = views.find_ticket(args.ref, desk.config)
        item = views.detail(ticket, desk.config)
        if args.json:
            print(json.dumps(item, ensure_ascii=False, indent=2))
        else:
            _print_ticket(item)
        return 0
    items = views.list_tickets(
        desk.config, status=args.status, team=args.team, with_messages=args.with_messages
    )
    if args.json:
        print(json.dumps(items, ensure_ascii=False))
        return 0
    for item in items:
        print(
            f"{item['ref']:>9}  {item['status']:<10} {item['priority']:<8} "
            f"{(item['requester'] or '-')[:32]:<32} {item['message_count']:>3}  {item['subject'][:60]}"
        )
    if not items:
        print("no tickets")
    return 0


def _print_ticket(item: dict[str, Any]) -> None:
    print(f"{item['ref']}  {item['subject']}")
    print(
        f"status {item['status']}, priority {item['priority']}, type {item['issue_type']}, "
        f"requester {item['requester']}, team {item['team'] or '-'}"
    )
    if item["participants"]:
        print("participants: " + ", ".join(item["participants"]))
    for message in item["messages"]:
        print()
        print(f"--- {message['date']}  {message['kind']} {message['direction']}  {message['from']}")
        print(message["text"])
        for att in message["attachments"]:
            print(f"    [attachment] {att['name']} ({att['size']} bytes)")
    print()
    for event in item["events"]:
        print(f"{event['at']}  {event['kind']}: {event['detail']}")


def _quarantine(desk: Any, args: argparse.Namespace, now: datetime) -> int:
    from maildesk.tickets.views import iso

    if args.quarantine_command == "list":
        rows = desk.quarantined()
        items = [
            {
                "id": r.id,
                "received_at": iso(r.received_at),
                "source": r.source,
                "source_ref": r.source_ref,
                "size": r.size,
                "message_id": r.message_id,
                "reason": r.reason,
                "attempts": r.attempts,
            }
            for r in rows
        ]
        if args.json:
            print(json.dumps(items, ensure_ascii=False))
        else:
            for item in items:
                print(f"{item['id']:>6}  {item['received_at']}  {item['source']:<6} {item['reason'][:100]}")
            if not items:
                print("quarantine is empty")
        return 0
    failed = 0
    for spool_id in args.ids:
        outcome = desk.release(spool_id, now)
        if outcome.status == "quarantined":
            failed += 1
            print(f"{spool_id}: quarantined again: {outcome.reason}", file=sys.stderr)
        else:
            print(f"{spool_id}: {outcome.status} {outcome.ticket_ref}".rstrip())
    return 1 if failed else 0


def _outbox(desk: Any, now: datetime) -> int:
    from maildesk.outbox import send_due

    sent = retrying = failed = 0
    while True:  # pass after pass until nothing more is due
        done = send_due(desk.config, desk.database, now)
        sent, retrying, failed = sent + done.sent, retrying + done.retrying, failed + done.failed
        if not done.sent:
            break
    print(f"{sent} sent, {retrying} to retry, {failed} failed")
    return 1 if failed else 0


def _explain(desk: Any, args: argparse.Namespace, now: datetime) -> int:
    from maildesk.explain import explain_file

    for path in args.files:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror}") from None
        found = explain_file(desk, raw, now)
        if args.json:
            print(json.dumps({"file": str(path), **found}, ensure_ascii=False, default=str))
            continue
        print(f"{path}: {found['subject']!r} from {found['from']}")
        screening = found["screening"]
        print(f"  screening: {screening['verdict']} ({screening['action']})"
              + (f": {'; '.join(screening['reasons'])}" if screening["reasons"] else ""))  # fmt: skip
        if "agent" in found:
            agent = found["agent"]
            print(
                f"  agent: {agent['agent']}, "
                + ("trusted" if agent["trusted"] else f"not trusted: {agent['problem']}")
            )
        threading = found.get("threading")
        if threading:
            where = threading["ticket"] or "a new ticket"
            print(
                f"  threading: {threading['rule']} -> {where}"
                + (" (reopens it)" if threading["reopens"] else "")
            )
            for reason in threading["why"]:
                print(f"    - {reason}")
        if "triage" in found:
            t = found["triage"]
            print(f"  triage: {t['issue_type']} ({t['type_confidence']}), {t['priority']}, team {t['team']}, "
                  f"assignee {t['assignee']}, status {t['status']}")  # fmt: skip
            for decision in found["decisions"]:
                print(f"    - {decision['kind']}: {decision['detail']}")
        for out in found["would_send"]:
            print(f"  would send {out['kind']} to {', '.join(out['to'])}: {out['subject']}")
        if not found["would_send"]:
            print("  would send nothing")
    return 0


def _sla(desk: Any, args: argparse.Namespace, now: datetime) -> int:
    from maildesk.sla.clock import run_pass
    from maildesk.sla.digest import send_digest

    result = run_pass(desk.config, desk.database, now)
    digest = send_digest(desk.config, desk.database, now)
    if args.json:
        print(json.dumps({**result.as_dict(), "digest": digest}))
    else:
        actions = ", ".join(f"{n} {k}" for k, n in sorted(result.actions.items())) or "nothing due"
        print(
            f"looked at {result.looked_at} tickets: {actions}"
            + (f"; digest sent to {digest}" if digest else "")
        )
    return 0


def _report(desk: Any, args: argparse.Namespace, now: datetime) -> int:
    from maildesk.durations import parse_duration
    from maildesk.sla.report import sla_report

    try:
        within = parse_duration(args.within)
    except ValueError as exc:
        raise UserError(f"--within: {exc}") from None
    report = sla_report(desk.config, now, within)
    if args.html is not None:
        from maildesk.reports.sla_page import write_sla_page

        write_sla_page(desk.config, now, args.html)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
        return 0
    print(f"SLA at {report.now}: {len(report.breached)} breached, {len(report.due)} due, "
          f"{len(report.unanswered)} unanswered, {len(report.unattended)} unattended")  # fmt: skip
    for title, items in (("breached", report.breached), ("due", report.due)):
        for item in items:
            print(f"  {title:8} {item.ref:10} {item.deadline:14} {item.due_at}  {item.subject[:60]}")
    if args.html is not None:
        print(f"wrote {args.html}")
    return 0


def _classify(desk: Any, args: argparse.Namespace, now: datetime) -> int:
    from maildesk.classify import classify_file

    for path in args.files:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror}") from None
        result = classify_file(desk, raw, now)
        result = {"file": str(path), **result}
        if args.json:
            print(json.dumps(result, ensure_ascii=False))
        else:
            score = "-" if result["spam_score"] is None else f"{result['spam_score']:.3f}"
            print(f"{path}: {result['verdict']} (spam score {score})")
            for reason in result["reasons"]:
                print(f"    {reason}")
    return 0


def _train(desk: Any, args: argparse.Namespace, now: datetime) -> int:
    from maildesk.training import train_spam_command, train_text_command

    if args.kind == "spam":
        print(train_spam_command(desk, args.data, args.out, now))
    else:
        print(train_text_command(desk, args.kind, args.data, args.out))
    return 0


def _templates(config: Config, args: argparse.Namespace) -> int:
    from maildesk.respond import lint
    from maildesk.respond.render import environment

    env = environment(config)
    names = lint.template_names(env)
    findings = lint.check(env, lint.vendor_names_of(config))
    if args.json:
        print(json.dumps({"checked": names, "findings": [asdict(f) for f in findings]}, ensure_ascii=False))
    else:
        for finding in findings:
            print(f"{finding.template}: {finding.rule}: {finding.message}")
        print(f"{len(names)} templates checked, {len(findings)} findings")
    return 1 if findings else 0


def _evaluate(args: argparse.Namespace) -> int:
    from maildesk.classifier.text import TextModel, evaluate, load_data, plot_confusion, scores

    if args.kind == "spam":
        from maildesk.classifier.handle import CheckedSpamModel
        from maildesk.classifier.spam import load_examples

        folder = args.model / "spam" if (args.model / "spam" / "spam.json").exists() else args.model
        spam_model = CheckedSpamModel(folder)
        examples = load_examples(args.data)
        truth = ["spam" if is_spam else "ham" for _, is_spam in examples]
        predicted = [
            "spam" if spam_model.score(raw).probability >= spam_model.threshold else "ham"
            for raw, _ in examples
        ]
        result = scores(truth, predicted, ["ham", "spam"])
    else:
        model = TextModel.load(args.model, args.kind)
        texts, labels = load_data(args.data)
        result = evaluate(model, texts, labels)
    png = plot_confusion(result, args.png or Path(f"{args.kind}-confusion.png"), args.kind)
    if args.json:
        print(json.dumps({k: result[k] for k in ("n", "accuracy", "macro_f1", "per_class", "confusion")}))
        return 0
    print(
        f"{args.kind}: n={result['n']}, accuracy {result['accuracy']:.3f}, macro-F1 {result['macro_f1']:.3f}"
    )
    for label, m in result["per_class"].items():
        print(
            f"  {label:<24} P {m['precision']:.3f}  R {m['recall']:.3f}  F1 {m['f1']:.3f}  n={m['support']}"
        )
    print(f"confusion matrix: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
