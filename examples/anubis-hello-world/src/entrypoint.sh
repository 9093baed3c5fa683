#!/bin/sh
# Stands in for the `src/` directory that Anubis's descriptor-script-mode.toml is submitted with
# (`anubis --submit descriptor-script-mode.toml --script src`): runs from $BAI_SCRIPTS_PATH/src, in
# python:3-alpine, and prints the lines the descriptor's three metric patterns read. POSIX sh only.
echo "Hello from $(hostname), scripts in $BAI_SCRIPTS_PATH, working directory $(pwd)"
for line in "1 0.9021 0.41" "2 0.4533 0.67" "3 0.2178 0.88"; do
    set -- $line
    echo "Epoch $1"
    echo "train loss $2"
    echo "accuracy=$3"
done
