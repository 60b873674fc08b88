"""`hfkdq report`: render REPORT.md and pareto.png again from one or more quantization results.json.

Quantizing is slow and measuring is machine-bound; rendering is neither. A report is re-rendered after
the report code changes, or assembled from runs that could not happen in one process (ONNX Runtime in
one environment, bitsandbytes on a GPU machine). The rows are taken as measured; only the deltas are
recomputed, against the fp32 row of the same student on the same device (`hfkdq.report.merge_results`).
"""

from __future__ import annotations

import argparse
import sys

from hfkdq.commands.errors import EXIT_OK
from hfkdq.commands.flags import directory_to_write

HELP = "Render REPORT.md and pareto.png again from one or more quantization results.json files."
EPILOG = """\
Examples:
  # re-render a report in place (after editing, or with a newer hfkdq)
  hfkdq report outputs/ner-btc-minilm/quantized/results.json --output_dir outputs/ner-btc-minilm/quantized

  # one table from two runs of the same student: ONNX on a CPU box, bitsandbytes on a GPU box
  hfkdq report cpu-run/results.json gpu-run/results.json --output_dir merged-report

  # compare the variants of two students (rows are grouped per student, each against its own fp32)
  hfkdq report run-a/quantized/results.json run-b/quantized/results.json --output_dir compare-a-b
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `hfkdq report`."""
    parser.add_argument(
        "results",
        nargs="+",
        metavar="RESULTS.json",
        help="results.json written by hfkdq quantize (or a recipe's --quantize); several are merged.",
    )
    parser.add_argument(
        "--output_dir",
        type=directory_to_write,
        required=True,
        help="Gets REPORT.md, pareto.png and the (merged) results.json.",
    )


def run(args: argparse.Namespace) -> int:
    """Load every file (naming the first bad one), merge, write, and print the table."""
    from hfkdq.report import load_results, markdown_table, merge_results, write_report

    loaded = [load_results(path) for path in args.results]
    results = merge_results(loaded, sources=args.results)
    for note in results.get("merge_notes") or []:
        print(f"hfkdq report: note: {note}", file=sys.stderr)
    files = write_report(results, args.output_dir)
    print(markdown_table(results))
    print(f"\nWrote {', '.join(str(path) for path in files.values())}")
    return EXIT_OK
