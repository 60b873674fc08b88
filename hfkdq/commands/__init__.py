"""The `hfkdq` command line and the recipes' entry points: one module per verb.

    hfkdq distill | quantize | evaluate | report | push   (hfkdq.commands.main dispatches)

Each verb module holds its flags (`add_arguments`), its examples (`EPILOG`) and `run(args) -> int`, the
exit status; the work itself is library code the verb calls. `hfkdq.commands.errors` holds the exit
statuses and the error handling every entry point shares. The library never imports this package.
"""
