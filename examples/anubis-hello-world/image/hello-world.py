"""Stands in for the WORKDIR of Anubis's benchmarkai/hello-world:latest image (no container engine
here): `python3 hello-world.py` finds it in its working directory, as in that image. Prints a greeting
and the `elapsed: <ms>` line its descriptor's metric pattern reads."""

import os
import socket
import time

started = time.perf_counter()
print(f"Hello world from {socket.gethostname()}, in {os.getcwd()}")
total = sum(i * i for i in range(200_000))  # a little work to time
print(f"sum of squares: {total}")
print(f"elapsed: {(time.perf_counter() - started) * 1000:.3f}")
