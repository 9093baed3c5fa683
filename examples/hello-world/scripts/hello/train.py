"""A stand-in training script: prints the lines the descriptor's metric patterns pick up."""

import argparse
import os

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=1)
args = parser.parse_args()
print(os.environ.get("GREETING", ""))
for epoch in range(args.epochs):
    print(f"Epoch {epoch} accuracy={0.5 + epoch / 10:.2f}")
