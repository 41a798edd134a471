"""The `ragrerank` command: a thin layer over the package; every error is one line, exit 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ragrerank.config import Settings, resolve_settings
from ragrerank.errors import RagrerankError

Command = Callable[[argparse.Namespace, Settings], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = resolve_settings(docs=args.docs, home=args.home).with_models(
            bi_encoder=args.bi_encoder, cross_encoder=args.cross_encoder, llm=args.llm
        )
        return args.command(args, settings)
    except RagrerankError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: earlier artifacts are left as they were", file=sys.stderr)
        return 130


def _doctor(args: argparse.Namespace, settings: Settings) -> int:
    from ragrerank.doctor import run_checks, versions

    print(versions())
    print(f"artifacts: {settings.home}")
    checks = run_checks(settings)
    for check in checks:
        print(f"  {check.status:<9} {check.name:<13} {check.detail}")
    failed = [check for check in checks if check.status == "missing"]
    if failed:
        print(f"doctor: {len(failed)} problem(s); first: {failed[0].detail}", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ragrerank", description=__doc__)
    parser.add_argument("--docs", help="folder that holds website/ (default: $DOCS_HOME_FOLDER or $BASE_FOLDER)")
    parser.add_argument("--home", help="artifacts folder (default: $RAGRERANK_HOME or artifacts/)")
    parser.add_argument("--bi-encoder", help="bi-encoder name or folder")
    parser.add_argument("--cross-encoder", help="cross-encoder name or folder")
    parser.add_argument("--llm", help="chat LLM name or folder")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    doctor = commands.add_parser("doctor", help="show versions, docs, models and artifacts; exit 1 if something is missing")
    doctor.set_defaults(command=_doctor)
    return parser


if __name__ == "__main__":
    sys.exit(main())
