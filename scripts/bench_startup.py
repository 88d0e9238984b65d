"""How long `kgrec` commands take from the shell, start-up included, against importing torch.

Each command runs --repeats times as a fresh process (the way a user or a cron job runs it) and
the median wall time is printed. Baseline in the same run: `python -c 'import torch'`, the floor
of any command that touches a model or its vectors; the ratio column is each command's time over
it. Beside it, what the rest of the training stack (PyTorch Geometric, Lightning, transformers)
adds to an import. To time another version of kgrec with this script, put its checkout first on
PYTHONPATH and run from outside this one (the commands run in this script's environment):

    python scripts/bench_startup.py runs/ml-100k [--data ~/.cache/kgrec/datasets/ml-100k] [--repeats 5]
    cd /tmp && PYTHONPATH=/path/to/other/checkout python /path/to/scripts/bench_startup.py /path/to/runs/ml-100k
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import at_least_one, check_folder, check_runs, one_line_errors

import kgrec  # which checkout the commands run (the first on sys.path, as theirs)
from kgrec.errors import KgrecError

# Bad input met while running (a run kgrec cannot query) in one line, status 2. What this process
# imports (_bench: torch) leaves the timings alone: every command timed is a fresh process.
sys.excepthook = one_line_errors

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("run", type=Path, help="run folder written by `kgrec train` (its index is built first if missing)")
parser.add_argument("--data", type=Path, help="a dataset folder for `kgrec data info` (default: the run's)")
parser.add_argument("--repeats", type=at_least_one, default=5, help="runs of each command; the median is printed")
args = parser.parse_args()
check_runs(parser, args.run)
check_folder(parser, "--data", args.data)


def stop_if_failed(name: str, done: subprocess.CompletedProcess) -> None:
    """Stop at a command that failed: kgrec's one-line error (bad input, status 2: a run without
    vectors) as this bench's own; anything else, a crash, with the end of its output."""
    said = done.stderr.strip().splitlines()
    if done.returncode == 2 and said:
        raise KgrecError(f"{name}: {said[-1].removeprefix('kgrec: error: ')}")
    if done.returncode != 0:
        sys.exit(f"{name} failed:\n{done.stderr[-2000:]}")


beside = Path(sys.executable).with_name("kgrec")  # this interpreter's environment, activated or not
command_path = str(beside) if beside.is_file() else shutil.which("kgrec") or sys.exit("no kgrec command: install kgrec first")
ids = json.loads((args.run / "id_maps.json").read_text(encoding="utf-8"))
data = args.data or Path(json.loads((args.run / "manifest.json").read_text(encoding="utf-8"))["dataset_path"])
user, item = ids["users"][0], ids["items"][0]
python = sys.executable
split = Path(tempfile.mkdtemp(prefix="kgrec-bench-startup-")) / "split"  # written, then removed, each time
commands = {
    "python -c pass": [python, "-c", "pass"],
    "import torch (baseline)": [python, "-c", "import torch"],
    "import torch, PyG, Lightning, transformers": [python, "-c", "import torch, torch_geometric, lightning, transformers"],
    "kgrec --help": [command_path, "--help"],
    "kgrec data info DATA": [command_path, "data", "info", str(data)],
    "kgrec data split --data DATA --out SPLIT": [command_path, "data", "split", "--data", str(data), "--out", str(split)],
    "kgrec train --print-config": [command_path, "train", "--print-config", "--config", "none"],
    f"kgrec recommend RUN --user {user}": [command_path, "recommend", str(args.run), "--user", user],
    f"kgrec similar RUN --item {item}": [command_path, "similar", str(args.run), "--item", item],
}
first = f"kgrec recommend RUN --user {user}"
stop_if_failed(first, subprocess.run(commands[first], capture_output=True, text=True))  # builds a missing index

seconds = {}
for name, command in commands.items():
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        stop_if_failed(name, done)
        shutil.rmtree(split, ignore_errors=True)
    seconds[name] = statistics.median(times)

shutil.rmtree(split.parent, ignore_errors=True)
baseline = seconds["import torch (baseline)"]
print(f"{args.run}, kgrec from {Path(kgrec.__file__).parent}, median of {args.repeats} runs each\n")
print(f"{'command':<46}{'seconds':>9}{'x baseline':>12}")
for name, value in seconds.items():
    print(f"{name:<46}{value:>9.2f}{'x' + format(value / baseline, '.2f'):>12}")
