"""Coverage-guided fuzzing of kbroker's parsers of untrusted bytes (atheris + libFuzzer).

Theory of operation
-------------------
Every *target* (a module in ``fuzz/targets/``) feeds one input of arbitrary bytes to one
place where kbroker reads data it did not write itself, the way the broker reads it:

=================  ===============================================================
requests           a request frame: header + body of every API key and version
                   (``wire.headers`` + ``wire.codec``, the broker's dispatch path)
responses          a response frame of every API key and version (what the client
                   side of ``kbroker.client`` decodes)
records            a records blob: batch walking, CRC, decompression, the records
                   codec and control records (``wire.records``)
compression        one codec id + a compressed section (``wire.compression``)
log_recovery       the files of a partition directory (segments, indexes,
                   transaction indexes, producer snapshots, leader-epoch
                   checkpoint): open with recovery, read everything, append
                   (``log.PartitionLog``)
groups             ``__consumer_offsets`` records: classic-group metadata, offset
                   commits and KIP-848 consumer-group records, replayed into a
                   ``GroupCoordinator`` which then serves and expires them
transactions       ``__transaction_state`` records replayed into a
                   ``TransactionCoordinator`` which then serves and expires them
=================  ===============================================================

Each target states its property in its ``test_one_input``: the code under test raises
nothing but its documented bad-input exceptions (``wire``'s ``DecodeError``, ``log``'s
``LogError``, the coordinators' record-format errors), never hangs (libFuzzer's
``-timeout`` flags an input that runs too long) and keeps its own invariants (for the
log: recovery never leaves a batch whose CRC-32C fails, and a recovered log accepts an
append).  Anything else -- an ``AssertionError`` from the property or any other
exception -- is a crash: libFuzzer stops and writes the input to the artifacts
directory.

The seed corpus is generated at run time (``Target.seeds()``) from the golden frames
and batches captured from real clients (``tests/wire/golden``), from every request and
response class filled at every version, and from logs and coordinator records that the
engine and the coordinators themselves write; nothing binary is committed here.

Running: ``python -m fuzz <target>|all [--runs N] [--seconds S]`` from the repository
root (see ``python -m fuzz --help``); ``python -m fuzz repro <target> FILE...`` replays
saved inputs without atheris and prints the traceback of a failing one.
"""
