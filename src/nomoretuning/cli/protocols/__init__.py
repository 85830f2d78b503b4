"""The protocols of the command line, one per module, each with its ``*_command`` entry point:

- `nomoretuning.cli.protocols.train`: one run of a config (``nomoretuning train``); every other
  protocol is made of these runs.
- `nomoretuning.cli.protocols.compare`: the paper's Table 1 (``nomoretuning compare``).
- `nomoretuning.cli.protocols.table3`: the paper's learning-to-rank Table 3
  (``compare.protocol: table3``).
- `nomoretuning.cli.protocols.grid`: the loss-weight grid with NMT beside it
  (``nomoretuning grid``).

Every run is reported as a `nomoretuning.cli.record.RunRecord`; every file a protocol writes is
written by the main process only (`nomoretuning.cli.outputs`).
"""
