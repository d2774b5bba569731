"""``refactorbot``: run the fleet or one service, and talk to a running fleet."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import urllib.error
import urllib.request
from typing import Any

from services.kit.config import ConfigError, Settings, load_settings
from services.kit.credentials import NO_KEY_HELP, local_api_key

EXIT_CONFIG = 2


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"refactorbot: {exc}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)


def _api_key(settings: Settings, given: str | None) -> str:
    key = given or local_api_key(settings)
    if key is None:
        sys.exit(NO_KEY_HELP.replace("no API key: ", "no API key: pass --api-key, "))
    return key


class CliError(Exception):
    """A failed request to the fleet: printed to stderr, exit 1."""


def call_master(
    settings: Settings,
    method: str,
    path: str,
    key: str,
    body: dict[str, Any] | None = None,
    timeout: float = 180,
) -> Any:
    """One JSON request to master_core; CliError with a clear message on any failure."""
    base = settings.master_core.base_url
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(  # noqa: S310 - our own master_core URL
        base + path,
        data=data,
        method=method,
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - our own URL
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = exc.reason
        raise CliError(f"error {exc.code}: {message}") from exc
    except TimeoutError as exc:
        raise CliError(f"master_core at {base} did not answer within {timeout:g}s") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(
            f"cannot reach master_core at {base} ({reason}); is the fleet running? "
            "start it with `make run`"
        ) from exc
    except ValueError as exc:
        raise CliError(f"master_core at {base} sent a response that is not JSON") from exc


def _dim(text: str) -> str:
    return f"\033[2m{text}\033[0m" if sys.stderr.isatty() else text


def cmd_up(args: argparse.Namespace) -> None:
    from refactorbot.fleet import FleetError, run_fleet

    settings = _settings()
    try:
        asyncio.run(run_fleet(settings))
    except FleetError as exc:
        print(f"refactorbot: the fleet did not start: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:  # Ctrl-C before the runner's own handlers were installed
        print("stopped")


def cmd_serve(args: argparse.Namespace) -> None:
    if args.name == "simulator":
        from openrouter_gateway.simulator import main

        main()
        return
    from services.kit.serve import serve

    serve(args.name)


def _uptime(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def cmd_status(args: argparse.Namespace) -> None:
    settings = _settings()
    fleet = call_master(
        settings, "GET", "/v1/fleet/status", _api_key(settings, args.api_key), timeout=15
    )
    rows = [("service", "ok", "version", "uptime", "url")]
    for name, health in fleet["services"].items():
        st = health.get("status") or {}
        rows.append(
            (
                name,
                "yes" if health["ok"] else f"NO ({health.get('error')})",
                str(st.get("version") or "-"),
                _uptime(st.get("uptime_s")),
                str(health.get("url", "-")),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    if not fleet["ok"]:
        sys.exit(1)


def cmd_chat(args: argparse.Namespace) -> None:
    settings = _settings()
    body: dict[str, Any] = {"message": args.message}
    if args.session:
        body["session_id"] = args.session
    turn = call_master(settings, "POST", "/v1/chat", _api_key(settings, args.api_key), body)
    print(turn["reply"])
    usage = turn["usage"]
    print(
        _dim(
            f"session {turn['session_id']} · {turn['model']} · "
            f"{usage.get('total_tokens', '?')} tokens · ${usage.get('cost_usd', 0):.6f} · "
            f"continue with --session {turn['session_id']}"
        ),
        file=sys.stderr,
    )


def cmd_keys_create(args: argparse.Namespace) -> None:
    from master_core.keys import create_api_key_cli

    try:
        key = create_api_key_cli(
            _settings(), name=args.name, admin=args.admin, expires_in_days=args.expires_in_days
        )
    except ValueError as exc:
        raise CliError(f"error: {exc}") from exc
    print(key)
    print("Keep it safe: only its hash is stored, it cannot be shown again.", file=sys.stderr)


def _keys_db(fn: Any) -> Any:
    """Run ``fn(session)`` on master_core's database (the fleet may be down); a refusal
    (unknown id, last admin key, ...) becomes a CliError with its reason."""
    from master_core.keys import open_master_db
    from services.kit.errors import SliceError

    db = open_master_db(_settings())
    try:
        with db.session() as session:
            return fn(session)
    except SliceError as exc:
        raise CliError(f"error {exc.status_code}: {exc.message}") from exc
    finally:
        db.dispose()


def _when(value: Any) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M")


def cmd_keys_list(args: argparse.Namespace) -> None:
    from master_core.keys import describe_key, list_keys

    def rows(session: Any) -> list[dict[str, Any]]:
        return [describe_key(r) for r in list_keys(session=session, limit=10_000, offset=0)[0]]

    keys = _keys_db(rows)
    table = [("id", "name", "admin", "state", "created", "expires", "last used")]
    for k in keys:
        table.append(
            (
                k["id"],
                k["name"],
                "yes" if k["admin"] else "no",
                k["state"],
                _when(k["created_at"]),
                _when(k["expires_at"]),
                _when(k["last_used_at"]),
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def cmd_keys_revoke(args: argparse.Namespace) -> None:
    from master_core.keys import revoke_key

    _keys_db(lambda s: revoke_key(session=s, key_id=args.id))
    print(f"revoked {args.id}: it is refused from now on", file=sys.stderr)


def cmd_keys_rotate(args: argparse.Namespace) -> None:
    from master_core.keys import rotate_key

    _, raw = _keys_db(lambda s: rotate_key(session=s, key_id=args.id))
    print(raw)
    print(
        f"{args.id} has a new secret (above, shown once); the old one is refused from now on.",
        file=sys.stderr,
    )


def _days(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 3650:
        raise argparse.ArgumentTypeError("must be from 1 to 3650")
    return value


def build_parser() -> argparse.ArgumentParser:
    from services.kit.manifest import service_names

    parser = argparse.ArgumentParser(prog="refactorbot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start the whole fleet (Ctrl-C stops it)").set_defaults(fn=cmd_up)
    serve = sub.add_parser("serve", help="run one service in the foreground")
    serve.add_argument("name", choices=[*service_names(), "simulator"])
    serve.set_defaults(fn=cmd_serve)
    status = sub.add_parser("status", help="status of every service of a running fleet")
    status.add_argument("--api-key")
    status.set_defaults(fn=cmd_status)
    chat = sub.add_parser("chat", help="one chat turn through the running fleet")
    chat.add_argument("message")
    chat.add_argument("--session", help="continue this session")
    chat.add_argument("--api-key")
    chat.set_defaults(fn=cmd_chat)
    keys = sub.add_parser("keys", help="API keys").add_subparsers(dest="keys_cmd", required=True)
    create = keys.add_parser("create", help="make a new API key, printed once")
    create.add_argument("--name", required=True)
    create.add_argument("--admin", action="store_true")
    create.add_argument("--expires-in-days", type=_days, help="refuse the key after N days")
    create.set_defaults(fn=cmd_keys_create)
    keys.add_parser("list", help="every key: id, name, admin, state, dates").set_defaults(
        fn=cmd_keys_list
    )
    revoke = keys.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("id")
    revoke.set_defaults(fn=cmd_keys_revoke)
    rotate = keys.add_parser("rotate", help="a new secret for a key, printed once")
    rotate.add_argument("id")
    rotate.set_defaults(fn=cmd_keys_rotate)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.fn(args)
    except CliError as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
