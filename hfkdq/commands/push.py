"""`hfkdq push`: publish a run to the Hugging Face Hub (the work is `hfkdq.hub.push_to_hub`)."""

from __future__ import annotations

import argparse
import sys

from hfkdq.commands.errors import EXIT_ERROR, EXIT_METRIC_DROP, EXIT_OK, print_banner
from hfkdq.commands.flags import finite_number

HELP = (
    "Publish a run to the Hugging Face Hub: student on main, each variant on its own branch, model card, "
    "quality gate."
)
EPILOG = """\
Layout: the fp32 student on main, each quantized variant on a branch named after its method
(onnx-int8, bnb-8bit, ...) of the same repo, one model card on every revision.

Examples:
  # a recipe's output: student/ + quantized/<method>/ ; variants losing > 1 F1 point stay local (exit 3)
  hfkdq push outputs/ner-btc-minilm --repo_id you/minilm-btc-student --max_metric_drop 1.0

  # see the exact file list per revision without uploading anything
  hfkdq push outputs/ner-btc-minilm --repo_id you/minilm-btc-student --dry_run

  # a bare student directory, to a private repo, with an explicit token
  hfkdq push outputs/glue-sst2/student --repo_id your-org/sst2-student --private --token "$HF_TOKEN"
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`hfkdq push` arguments; the epilog with examples is set here so the parser shows it verbatim."""
    parser.add_argument(
        "run_dir",
        help="A run's output directory (student/, quantized/), a saved student, or one quantized variant.",
    )
    parser.add_argument("--repo_id", required=True, help="Hub repo, namespace/name (created when missing).")
    parser.add_argument(
        "--max_metric_drop",
        type=finite_number(0),
        default=None,
        help="Do not push a variant that lost more than this many metric points (x100) vs the fp32 student, "
        "as measured in quantized/results.json; exit 3 when one was kept back.",
    )
    parser.add_argument(
        "--private", action="store_true", help="Create the repo private (an existing repo is kept as is)."
    )
    parser.add_argument(
        "--token", default=None, help="Hub token with write access (default: HF_TOKEN or the login)."
    )
    parser.add_argument(
        "--license", default="apache-2.0", help="Licence of the published model, for the card."
    )
    parser.add_argument(
        "--dry_run", action="store_true", help="Print what would be uploaded; upload nothing."
    )


def run(args: argparse.Namespace) -> int:
    """`hfkdq push`: 0 when everything was pushed, 3 when the gate kept a variant back, 1 on an error."""
    from hfkdq.hub import HubPushError, push_to_hub

    try:
        result = push_to_hub(
            args.run_dir,
            args.repo_id,
            max_metric_drop=args.max_metric_drop,
            private=args.private,
            token=args.token,
            dry_run=args.dry_run,
            license=args.license,
        )
    except HubPushError as error:
        print(f"hfkdq push: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    if result.blocked:
        lines = "\n".join(failure.describe("not pushed") for failure in result.blocked)
        print_banner(f"QUALITY GATE: not pushed:\n{lines}")
        return EXIT_METRIC_DROP
    return EXIT_OK
