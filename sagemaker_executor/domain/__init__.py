"""Pure domain code: wire events, the benchmark descriptor, and translation to a training-job spec.

Nothing here does I/O, reads the clock or imports from the layers above."""
